package google

import (
	"context"

	"cloud.google.com/go/speech/apiv1/speechpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/callcaptions/bridge/stt/session"
)

// engine opens the StreamingRecognize calls of one track; session.Stream
// does everything else.
type engine struct {
	r       *Recognizer
	request *speechpb.StreamingRecognizeRequest // the config message
}

var _ session.Engine = (*engine)(nil)

// Limits are Google's, with the margins of maxStreamLimit and maxIdleClose.
func (e *engine) Limits() session.Limits {
	return session.Limits{MaxSession: maxStreamLimit, MaxChunkBytes: maxRequestBytes, AudioTimeout: maxIdleClose}
}

// Open starts a StreamingRecognize call and sends the track's config. A
// failed config send is reported by the first audio Send, and the
// stream's status by Recv.
func (e *engine) Open(ctx context.Context) (session.Conn, error) {
	// Retries are the session's (with replay and backoff); the client's
	// own open retry would block until ctx ends on an unreachable endpoint.
	cl, err := e.r.client.StreamingRecognize(ctx, gax.WithRetry(nil))
	if err != nil {
		return nil, err
	}
	return &conn{cl: cl, err: cl.Send(e.request)}, nil
}

// Failure says which gRPC codes are worth another stream: configuration,
// permission and credential errors are not.
func (e *engine) Failure(err error) session.Failure {
	st, _ := status.FromError(err)
	f := session.Failure{Code: st.Code().String(), Message: st.Message()}
	switch st.Code() {
	case codes.OutOfRange, codes.Aborted, codes.Unavailable, codes.DeadlineExceeded,
		codes.Internal, codes.ResourceExhausted, codes.Unknown, codes.Canceled:
		f.Retry = true
	}
	f.Slow = st.Code() == codes.ResourceExhausted
	return f
}

// conn is one StreamingRecognize call.
type conn struct {
	cl  speechpb.Speech_StreamingRecognizeClient
	err error // the config could not be sent
}

func (c *conn) Send(pcm []byte) error {
	if c.err != nil {
		return c.err
	}
	return c.cl.Send(&speechpb.StreamingRecognizeRequest{
		StreamingRequest: &speechpb.StreamingRecognizeRequest_AudioContent{AudioContent: pcm},
	})
}

func (c *conn) CloseSend() error { return c.cl.CloseSend() }

// Recv maps one response; an error sent in the response is the stream's.
func (c *conn) Recv() (session.Response, error) {
	resp, err := c.cl.Recv()
	if err == nil && resp.GetError() != nil {
		err = status.ErrorProto(resp.GetError())
	}
	if err != nil {
		return nil, err
	}
	var out session.Response
	for _, res := range resp.GetResults() {
		h := session.Hypothesis{Final: res.GetIsFinal(), Stability: float64(res.GetStability()),
			End: res.GetResultEndTime().AsDuration()}
		alts := res.GetAlternatives()
		if len(alts) == 0 {
			if h.Final { // settles the audio up to End, without text
				out = append(out, h)
			}
			continue
		}
		h.Text, h.Confidence = alts[0].GetTranscript(), float64(alts[0].GetConfidence())
		if h.Final {
			for _, w := range alts[0].GetWords() {
				h.Words = append(h.Words, session.WordTime{Word: w.GetWord(), Start: w.GetStartTime().AsDuration(),
					End: w.GetEndTime().AsDuration(), Confidence: float64(w.GetConfidence())})
			}
		}
		out = append(out, h)
	}
	return out, nil
}
