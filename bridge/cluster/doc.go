// Package cluster shares caption events between replicas of the bridge
// over NATS JetStream, so that a browser connected to any replica can
// follow a call held by any other.
//
// Every replica publishes the events of the calls it holds to one stream,
// on the subject bridge.events.<token>, where the token is the call id in
// unpadded base64url (call ids may hold characters a subject cannot; the
// id itself is in the event). The payload is the event as browsers get it
// (bridge.Event.Data); headers carry the node id and seq. Every replica
// also reads the stream and hands the events of other replicas' calls to
// its own caption hub (a bridge.Publisher), which then serves them like
// its own: late join, resume after a seq, all-calls subscribers.
//
// Every replica also keeps the call index (index.go): the record of each
// call in a key-value bucket, which every replica watches for its call
// list; and answers other replicas' requests about its calls (rpc.go).
//
// Goroutines: Run starts seven and returns when all have exited.
//
//   - The sender takes events from a queue of Config.Queue events that
//     Publish fills (Publish never blocks: when the queue is full the event
//     is dropped and counted) and publishes them asynchronously, at most
//     Config.Window unacknowledged at once. When the window is full the
//     event is dropped and counted (bridge_nats_publish_dropped_total):
//     captions to other replicas are best effort, and a slow or absent
//     NATS never holds up a call. While the connection is down the sender
//     waits for it and events wait in the queue, so other replicas get
//     them, in order, once it is back.
//   - The receiver reads the stream with an ordered consumer from the
//     newest event on (after a failure, from the message after the last
//     one it read), one event at a time, in stream order (a call's
//     events are published by one replica, in seq order, so they arrive in
//     seq order). Its own node's events are skipped. When it first sees a
//     call past its call.started (the call began before this replica
//     started), it reads that call's subject from the stream's start
//     first, so the hub gets the call whole; events it has handed on
//     already (by seq) are skipped.
//   - The watcher publishes this replica's heartbeat on HeartbeatSubject
//     (core NATS) every third of Config.NodeTimeout and, while connected,
//     declares lost every other node heard neither by heartbeat nor by
//     event for Config.NodeTimeout: it hands the sink a call.ended (reason
//     node_lost, the call's next seq) for each of that node's open calls.
//     Later events of such a call are skipped but for a new call.started.
//     The receiver and the watcher share the per-call state under one
//     mutex and hand events to the sink under it, so a call's events reach
//     the sink in seq order.
//   - The releaser deletes the owner keys (bucket Config.OwnersBucket) of
//     calls ended here, from a queue of releaseQueue ids (full: the key is
//     left to expire after Config.OwnerTTL).
//   - The relay sender publishes the messages of streams relayed from here
//     (core NATS, RelaySubject of the owner) from a queue of
//     Config.RelayQueue messages that the media sockets fill without
//     blocking (full: dropped and counted).
//   - The index goroutine opens the bucket, then watches it into the
//     in-memory entries, and starts two more: the putter, which takes
//     records from the coalescing queue PutRecord fills (never blocking;
//     full: a new call's record is dropped and counted) and puts them one
//     at a time; and the sweeper, which every sixth of Config.NodeTimeout
//     rewrites the active records of replicas unheard for it as
//     interrupted (node_lost), at the revision read.
//   - The request server subscribes to this replica's request subject and
//     hands requests to 8 workers through a queue of 64; a request that
//     finds the queue full is answered busy at once.
//
// Besides, the relay subscription's handler (one NATS goroutine) runs the
// streams relayed to this replica on the registry (Streams), and one
// watcher goroutine per relayed stream, on either side, ends it when the
// other side is lost or silent, or tells the relay that the call stopped
// it; Run waits for them after the cluster stops. See owner.go and
// relay.go for the protocol and its bounds.
//
// The NATS client reconnects by itself; the receiver's ordered consumer
// is recreated after a reconnect. A sink that is also a Gate is told,
// from the NATS client's callbacks and the receiver, whether other
// replicas' events can reach it (connected and reading): the caption hub
// then closes the subscribers that depend on them (close code 4503).
package cluster
