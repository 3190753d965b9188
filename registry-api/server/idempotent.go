package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/idempotency"
)

// HeaderIdempotencyKey names the header a client sets to make a write safe
// to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// idempotent makes a write with an Idempotency-Key answer a retry with the
// first answer instead of writing again. Keys are scoped to the credential
// and bound to the request (method, path, body): reusing a key for another
// request is refused. Answers of 5xx are not kept, so such a request may be
// retried for real.
func (s *Server) idempotent(c *gin.Context) {
	key := c.GetHeader(HeaderIdempotencyKey)
	if key == "" || s.opts.Idempotency == nil {
		c.Next()
		return
	}
	if len(key) > 255 || !printableASCII(key) {
		fail(c, problem(string(meter.CodeMalformed), "Idempotency-Key must be 1 to 255 printable ASCII characters"))
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		s.bodyError(c, err)
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.New()
	sum.Write([]byte(c.Request.Method + " " + c.Request.URL.Path + "\n"))
	sum.Write(body)
	fingerprint := hex.EncodeToString(sum.Sum(nil))
	scoped := principal(c).ID + "\x00" + key

	stored, err := s.opts.Idempotency.Begin(scoped, fingerprint)
	if err != nil {
		s.failErr(c, err)
		return
	}
	if stored != nil && stored.Final() {
		c.Header("Idempotent-Replayed", "true")
		if stored.Location != "" {
			c.Header("Location", stored.Location)
		}
		c.Data(stored.Status, stored.ContentType, stored.Body)
		c.Abort()
		return
	}
	claim := &idempotencyClaim{store: s.opts.Idempotency, key: scoped, fingerprint: fingerprint}
	if stored != nil {
		claim.pending = stored.Pending
	}
	c.Set(keyIdempotency, claim)
	rec := &recorder{ResponseWriter: c.Writer}
	c.Writer = rec
	defer func() {
		// A panicking handler (answered 500 by recover) must not leave the
		// key claimed, or every retry would be refused as in flight.
		if r := recover(); r != nil {
			s.opts.Idempotency.Abandon(scoped)
			panic(r)
		}
	}()
	c.Next()
	status := c.Writer.Status()
	if status >= 500 {
		s.opts.Idempotency.Abandon(scoped)
		return
	}
	err = s.opts.Idempotency.Finish(scoped, idempotency.Response{
		Fingerprint: fingerprint, Status: status, ContentType: c.Writer.Header().Get("Content-Type"),
		Body: rec.body.Bytes(), Location: c.Writer.Header().Get("Location"),
	})
	if err != nil {
		s.log.Error("store idempotent answer", "err", err)
	}
}

// idempotencyClaim is a request's claim on its Idempotency-Key: where the
// transactions it sends are recorded, and those a previous attempt sent.
type idempotencyClaim struct {
	store            *idempotency.Store
	key, fingerprint string
	pending          map[int][]byte
}

const keyIdempotency = "idempotency"

// recorder keeps a copy of what a handler writes.
type recorder struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) WriteString(s string) (int, error) {
	r.body.WriteString(s)
	return r.ResponseWriter.WriteString(s)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
