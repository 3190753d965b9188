package index

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// Meter records, key versions and meter types are JSON of some 400 to 700
// bytes, much of it field names and the text every P-256 key begins with:
// they are kept deflated with a dictionary of that text, at about half the
// size.
// The dictionary is part of the layout: changing it is a new layout.
var dictionary = []byte(`{"typeId":"","nmi":"MSP","manufacturer":"","model":"","certificate":"","versions":[{"softwareId":"",` +
	`"softwareChecksum":"sha256:","approvedFrom":"","approvedTx":"","approvedAt":"","withdrawal":{"reason":"","from":"","txId":"","at":""}}],` +
	`"recordedTx":"","recordedAt":"","updatedTx":"","updatedAt":""}` +
	`{"meterId":"","version":1,"txId":"","validFrom":"","proofSignature":"","block":` +
	`{"meterId":"","nmi":"MSP","publicKey":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",` +
	`"curve":"P-256","fingerprint":"","keyVersion":1,"status":"active","metadata":{"manufacturer":"","model":"","serialNumber":"",` +
	`"softwareId":"","softwareChecksum":"sha256:"},"revocation":{"reason":"keyCompromise","revokedAt":"","invalidityDate":"","txId":""},` +
	`"identityHash":"","registeredTx":"","registeredAt":"2026-01-01T00:00:00Z","updatedTx":"","updatedAt":"","typeId":"",` +
	`"software":[{"softwareId":"","softwareChecksum":"sha256:","since":"","txId":""}],"updates":{"count":1,"lastTime":"","lastHash":"","lastTx":""}}`)

var (
	deflaters = sync.Pool{New: func() any {
		w, err := flate.NewWriterDict(nil, flate.BestCompression, dictionary)
		if err != nil {
			panic(err) // the level is valid
		}
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReaderDict(nil, dictionary) }}
)

func deflate(b []byte) []byte {
	var out bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&out)
	w.Write(b) // a bytes.Buffer does not fail
	w.Close()
	return out.Bytes()
}

func inflate(b []byte) ([]byte, error) {
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(b), dictionary); err != nil {
		return nil, err
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return out, nil
}
