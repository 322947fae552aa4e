package bridge

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/callcaptions/bridge/bridge/provider"
)

// Why a stream is refused. Each of the first group is a reason in
// RefusalReason, counted by the web layer.
var (
	// ErrCallID: the start frame names no call, or a call id longer than
	// any provider sends.
	ErrCallID = errors.New("bad call id")
	// ErrProviderMismatch: the call id belongs to a call of another
	// provider.
	ErrProviderMismatch = errors.New("call belongs to another provider")
	// ErrAccountMismatch: the call id belongs to a call of another account
	// of the same provider.
	ErrAccountMismatch = errors.New("call belongs to another account")
	// ErrResumeWindow: the call ended longer than the resume window ago.
	ErrResumeWindow   = errors.New("call ended too long ago to continue")
	ErrUnsupported    = errors.New("unsupported media format")
	ErrTooManyCalls   = errors.New("too many concurrent calls")
	ErrTooManyStreams = errors.New("too many streams for this call")
	ErrShuttingDown   = errors.New("shutting down")

	// RefusalReason names these "other".
	ErrTrackBusy    = errors.New("track busy")
	ErrFormatChange = errors.New("track format changed")
	ErrCallEnding   = errors.New("call is ending")
)

// refusalReasons name the StartStream errors, first match wins.
var refusalReasons = []struct {
	err    error
	reason string
}{
	{ErrCallID, "call_id"}, {ErrProviderMismatch, "provider_mismatch"}, {ErrAccountMismatch, "account_mismatch"},
	{ErrResumeWindow, "resume_window"}, {ErrUnsupported, "unsupported"}, {ErrTooManyCalls, "max_calls"},
	{ErrTooManyStreams, "max_streams"}, {ErrShuttingDown, "shutdown"},
}

// RefusalReason names a StartStream error for metrics and logs.
func RefusalReason(err error) string {
	for _, r := range refusalReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// CheckCallID refuses a call id before anything is recorded under it: an
// empty one, or one longer than any provider sends. Any other id is
// accepted; the store maps it to a safe folder name.
func CheckCallID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: the start frame names no call", ErrCallID)
	case len(id) > MaxCallIDLen:
		return fmt.Errorf("%w: call id of %d bytes (at most %d)", ErrCallID, len(id), MaxCallIDLen)
	}
	return nil
}

// maxLogged bounds an untrusted string (a call id, codec name, parameter,
// event name …) in a log line.
const maxLogged = 64

// Clip is s for a log line: at most 64 bytes, cut at a rune boundary and
// marked with "…" when longer. Every string a media socket sent goes
// through it before it is logged, so a sender cannot grow the log.
func Clip(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	return clipTo(s, maxLogged) + "…"
}

// clipTo cuts s to at most n bytes at a rune boundary.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func clipAll(ss []string) []string {
	if len(ss) > 8 {
		ss = ss[:8]
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = Clip(s)
	}
	return out
}

// sameOwner refuses a stream of provider p and account acct for a call of
// provider have and account haveAcct. The account must match exactly where
// either side has one: a provider that sends it sends it on every stream.
func sameOwner(have provider.Name, haveAcct string, p provider.Name, acct string) error {
	if have != p {
		return fmt.Errorf("%w: a %s call, not %s", ErrProviderMismatch, have, p)
	}
	if haveAcct != acct {
		return ErrAccountMismatch // neither account is echoed: one is not the sender's
	}
	return nil
}

// mayContinue says whether a stream may continue the ended call prev: the
// same provider and account, within ResumeWindow of the end.
func (r *Registry) mayContinue(p provider.Name, st *provider.Start, prev CallRecord) error {
	if err := sameOwner(provider.Name(prev.Provider), prev.AccountID, p, st.AccountID); err != nil {
		return err
	}
	if r.cfg.ResumeWindow < 0 {
		return fmt.Errorf("%w: continuing ended calls is off", ErrResumeWindow)
	}
	end := prev.StartedAt.Add(time.Duration(prev.DurationMs) * time.Millisecond)
	if prev.EndedAt != nil {
		end = *prev.EndedAt
	}
	if ago := r.cfg.Now().Sub(end); ago > r.cfg.ResumeWindow {
		return fmt.Errorf("%w: it ended %s ago (resume window %s)", ErrResumeWindow, ago.Round(time.Second), r.cfg.ResumeWindow)
	}
	return nil
}
