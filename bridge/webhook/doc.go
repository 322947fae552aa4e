// Package webhook delivers the bridge's events to the user's back end:
// signed HTTP POSTs (Standard Webhooks 1.0), at least once, in seq order
// per call and endpoint, retried with backoff, kept in an on-disk outbox
// across restarts.
//
// Goroutines and queues. Publish runs on the call's goroutines under its
// event lock and only does a non-blocking send per endpoint into a bounded
// channel (Config.Queue; full: the event is dropped, counted as
// queue_full). Each endpoint has its goroutines, started by Run and
// awaited by it:
//
//   - persist: channel → outbox file (Config.OutboxBytes per endpoint;
//     full: the new event is dropped, counted as outbox_full and written
//     into the call record's webhooks_failed);
//   - deliver (Config.Workers of them, 4): each takes the oldest delivery
//     of a call no other worker holds → one POST at a time, retried
//     with exponential backoff and jitter up to Config.Attempts, then
//     given up (counted, recorded). A 410 Gone drops the call's pending
//     deliveries to that endpoint and refuses its later events.
//
// So a call's events go in seq order, one at a time, while up to Workers
// calls go side by side. A slow endpoint holds up only its own workers:
// media, captions and other endpoints never wait for it. When Run's context ends, persist
// writes what is still queued to the outbox and deliver stops (an attempt
// in flight is cut off and stays pending), so a restart goes on where this
// run stopped, with the same webhook-id and the attempts already made
// (written to the delivery's file after each failed one).
package webhook
