package main

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/rs/zerolog"

	"github.com/callcaptions/bridge/config"
	"github.com/callcaptions/bridge/stt/google"
	"github.com/callcaptions/bridge/stt/session"
)

// googleConfig copies the user-facing settings into the engine's fields of
// the same name; InterimResults is the engine's DisableInterimResults turned
// round. TestGoogleConfigCopiesEveryField fails if a field is missed.
func googleConfig(g config.Google, m *session.Metrics) google.Config {
	c := google.Config{DisableInterimResults: !g.InterimResults}
	c.Metrics = m
	src, dst := reflect.ValueOf(g), reflect.ValueOf(&c).Elem()
	for i := range src.NumField() {
		if f := dst.FieldByName(src.Type().Field(i).Name); f.IsValid() {
			f.Set(src.Field(i))
		}
	}
	return c
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
