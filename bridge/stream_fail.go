package bridge

// Fail ends the stream's call with reason error (see Call.Fail): the media
// socket's read loop hit a bug.
func (s *Stream) Fail(err error) { s.call.Fail(err) }
