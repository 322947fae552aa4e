package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/stt/google"
	"github.com/callcaptions/bridge/stt/session"
)

// googleConfig copies the user-facing settings into the engine's;
// TestGoogleConfigCopiesEveryField fails if a field is missed.
func googleConfig(g config.Google, m *session.Metrics) google.Config {
	return google.Config{
		Endpoint: g.Endpoint, Insecure: g.Insecure, CredentialsFile: g.CredentialsFile,
		Language: g.Language, AlternativeLanguages: g.AlternativeLanguages, Model: g.Model, Enhanced: g.Enhanced,
		Punctuation: g.Punctuation, WordTimeOffsets: g.WordTimeOffsets, ProfanityFilter: g.ProfanityFilter,
		PhraseHints: g.PhraseHints, Boost: g.Boost, MaxAlternatives: g.MaxAlternatives,
		DisableInterimResults: !g.InterimResults,
		MaxStreams:            g.MaxStreams, PoolSize: g.PoolSize,
		Policy: session.Policy{
			RotateAfter: g.RotateAfter, StreamLimit: g.StreamLimit, RotatePause: g.RotatePause,
			Hold: g.Hold, IdleClose: g.IdleClose, SilenceClose: g.SilenceClose, SilenceLevel: g.SilenceLevel,
			PreRoll: g.PreRoll, GapFill: g.GapFill, ChunkDuration: g.ChunkDuration, QueueDuration: g.QueueDuration,
			ReplayLimit: g.ReplayLimit, DrainTimeout: g.DrainTimeout, SendTimeout: g.SendTimeout,
			BackoffInitial: g.BackoffInitial, BackoffMax: g.BackoffMax, ExhaustedBackoff: g.ExhaustedBackoff,
			MaxRetries: g.MaxRetries,
			Metrics:    m,
		},
	}
}

// newGoogle builds the one Google client of the process.
func newGoogle(cfg config.Config, log zerolog.Logger, m *session.Metrics) (*google.Recognizer, error) {
	gc := googleConfig(cfg.Google, m)
	if err := gc.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := google.New(ctx, gc, log)
	if err != nil {
		return nil, fmt.Errorf("google speech-to-text: %w", err)
	}
	return r, nil
}
