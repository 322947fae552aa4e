package s3store

import "github.com/callcaptions/bridge/recorder"

// Known tells the store that the bucket may hold callID (another replica
// holds or held the call, and uploads it when it ends), so that its reads
// of the call look in the bucket when the spool does not have it.
func (s *Store) Known(callID string) {
	s.addRemote(recorder.FolderName(callID))
}
