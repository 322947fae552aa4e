package bridge

// ContinueAfter makes the next event of call id carry a seq above seq,
// unless its seq is past that already. Cluster mode calls it before a
// replica takes over a call whose replica was lost, so the call keeps one
// seq order across both: subscribers that followed it elsewhere see the
// continuation after what they had. Without a publisher it does nothing.
func (r *Registry) ContinueAfter(id string, seq uint64) {
	if s, ok := r.cfg.Publisher.(*Sequencer); ok {
		s.ContinueAfter(id, seq)
	}
}

// ContinueAfter makes the next event of call id carry a seq above seq
// (see Registry.ContinueAfter).
func (s *Sequencer) ContinueAfter(id string, seq uint64) {
	c, _ := s.call("", id)
	c.mu.Lock()
	c.seq = max(c.seq, seq)
	c.mu.Unlock()
}
