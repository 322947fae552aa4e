// Package web is the bridge's HTTP side: the provider media sockets, the
// caption subscriber hub and its socket, the REST API, health and metrics,
// and the embedded dashboard. NewApp builds the one Fiber app that main and
// the tests use.
//
// # Goroutines
//
//   - Media socket: Fiber runs serveMedia on the connection's goroutine; it
//     is the stream's read loop. Once the stream has started, one watcher
//     goroutine waits for the bridge to stop the stream (shutdown, maximum
//     duration) and closes the socket to end the blocked read. serveMedia
//     returns only after the watcher has exited and the stream has been
//     handed back to its call, because Fiber reuses the Conn afterwards.
//   - Caption socket: ServeWS writes events, and pings between them, on the
//     connection's goroutine, with one reader goroutine (to notice the
//     client leaving); it waits for the reader before returning.
//   - Panics: every HTTP handler runs behind recoverHTTP (a 500 with the
//     usual JSON body). Socket handlers run outside Fiber's middleware:
//     recoverSocket is their RecoverHandler, the media read loop ends its
//     call with reason error (bridge.Call.Fail), and the helper goroutines
//     (stop watcher, caption reader) recover at their top; the caption
//     reader's is re-raised on the handler's goroutine once it has exited. Each panic is logged once with its stack and counted in
//     bridge_panics_total.
//   - Hub: Publish runs on the caller's goroutine (ingest or STT results)
//     with the event already numbered and encoded by bridge, and appends it
//     to each subscriber's bounded outbox; it never blocks on a subscriber.
//     Subscription.Next, on ServeWS's write loop, is the only place that
//     waits for events, and ends the wait for a call that has not started
//     after WaitTimeout.
//     hub.go holds calls, publish, the replay log and eviction;
//     subscription.go a subscriber's side; outbox.go its queue; encode.go
//     the shared message and what the hub encodes itself.
//
// # Before a call exists
//
// A media socket waits for its start frame at most Config.StartTimeout
// (then 1008), and at most Config.MaxPendingStreams sockets wait at once
// (beyond: 503 before the upgrade). Each remote address holds at most
// Config.MaxSocketsPerAddress media sockets, and as many caption sockets
// (beyond: 429 before the upgrade). All of it is counted in /metrics.
//
// # What is dropped when a queue is full
//
// A subscriber's outbox keeps only the newest partial of each segment (a
// final removes it); when the outbox still exceeds its event or byte bound,
// the subscriber is disconnected with reason "slow" and counted. A call's
// replay log (what late joiners and resumes get) keeps at most
// MaxReplayBytes: the oldest events but call.started are dropped and
// counted, and a replay that misses some starts with replay.truncated. Media
// frames are never queued here: they go straight into the bridge.
package web
