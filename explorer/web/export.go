package web

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/inter-nmi/pki/explorer/index"
)

// csvHeader names the registry export's columns.
var csvHeader = []string{"meterId", "nmi", "status", "keyVersion", "curve", "fingerprint", "manufacturer", "model",
	"serialNumber", "softwareId", "softwareChecksum", "revocationReason", "revokedAt", "invalidityDate", "txId", "block"}

// exportBlock reads ?block=N, by default the newest indexed block.
func (s *Server) exportBlock(r *http.Request) (uint64, error) {
	height, err := s.store.Height()
	if err != nil {
		return 0, fmt.Errorf("height: %w", err)
	}
	v := strings.TrimSpace(r.URL.Query().Get("block"))
	n, err := strconv.ParseUint(v, 10, 64)
	switch {
	case v != "" && err != nil:
		return 0, badRequest("block must be a block number, not %q.", v)
	case height == 0:
		return 0, notFound("No block is indexed yet, so there is no registry to export.")
	case v == "":
		return height - 1, nil
	case n >= height:
		return 0, notFound("Block %d is not indexed yet: the newest is %d.", n, height-1)
	}
	return n, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// attachment names the download after the channel and the block.
func (s *Server) attachment(w http.ResponseWriter, block uint64, ext string) {
	name := "meter-registry"
	if ch := unsafeName.ReplaceAllString(s.channel, "_"); ch != "" {
		name += "-" + ch
	}
	name += "-block-" + strconv.FormatUint(block, 10) + "." + ext
	h := w.Header()
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Cache-Control", "no-store")
}

// exportCSV streams the registry as it stood after a block.
func (s *Server) exportCSV(w http.ResponseWriter, r *http.Request) error {
	block, err := s.exportBlock(r)
	if err != nil {
		return err
	}
	s.attachment(w, block, "csv")
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	sent := &countingWriter{w: w}
	buf := bufio.NewWriterSize(sent, 64<<10)
	out := csv.NewWriter(buf)
	out.Write(csvHeader)
	n := 0
	err = s.store.Registry(block, func(e index.Entry) error {
		m := e.Meter
		var reason, revokedAt, invalidity string
		if m.Revocation != nil {
			reason, revokedAt, invalidity = string(m.Revocation.Reason), m.Revocation.RevokedAt, m.Revocation.InvalidityDate
		}
		n++
		return out.Write([]string{cell(m.ID), cell(m.NMI), cell(string(m.Status)), strconv.Itoa(m.KeyVersion), cell(string(m.Curve)),
			cell(m.Fingerprint), cell(m.Metadata.Manufacturer), cell(m.Metadata.Model), cell(m.Metadata.SerialNumber),
			cell(m.Metadata.SoftwareID), cell(m.Metadata.SoftwareChecksum), cell(reason), cell(revokedAt), cell(invalidity),
			cell(e.TxID), strconv.FormatUint(e.Block, 10)})
	})
	if err == nil {
		out.Flush()
		err = out.Error()
	}
	if err == nil {
		err = buf.Flush()
	}
	return s.exported(w, r, sent, "csv", block, n, err)
}

// cell keeps a spreadsheet from running a field as a formula: an NMI could
// otherwise plant one in a meter's metadata for the auditor's spreadsheet
// to run (OWASP "CSV injection"). The JSON export carries values unchanged.
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

type registryHeader struct {
	Channel    string `json:"channel"`
	AsOfBlock  uint64 `json:"asOfBlock"`
	ExportedAt string `json:"exportedAt"`
}

// exportJSON streams the registry as it stood after a block: one object,
// its meters an array written entry by entry.
func (s *Server) exportJSON(w http.ResponseWriter, r *http.Request) error {
	block, err := s.exportBlock(r)
	if err != nil {
		return err
	}
	s.attachment(w, block, "json")
	w.Header().Set("Content-Type", "application/json")
	head, err := json.Marshal(registryHeader{Channel: s.channel, AsOfBlock: block, ExportedAt: s.now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	sent := &countingWriter{w: w}
	buf := bufio.NewWriterSize(sent, 64<<10)
	buf.Write(head[:len(head)-1]) // without its closing brace: the meters follow
	buf.WriteString(`,"meters":[`)
	enc := json.NewEncoder(buf)
	n := 0
	err = s.store.Registry(block, func(e index.Entry) error {
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		return enc.Encode(e)
	})
	if err == nil {
		buf.WriteString("]}\n")
		err = buf.Flush()
	}
	return s.exported(w, r, sent, "json", block, n, err)
}

// countingWriter counts the bytes sent.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// exported logs an export. A failure before anything was sent is the
// error page's; once the download has begun its status is sent, so a
// failure can only be logged and the download cut short.
func (s *Server) exported(w http.ResponseWriter, r *http.Request, sent *countingWriter, format string, block uint64, meters int, err error) error {
	p, _ := principalFrom(r.Context())
	if err != nil && sent.n == 0 {
		w.Header().Del("Content-Disposition")
		return fmt.Errorf("export the registry as of block %d: %w", block, err)
	}
	if err != nil {
		s.log.Error("registry export cut short", "format", format, "block", block, "meters", meters, "credential", p.ID, "err", err)
		return nil
	}
	s.log.Info("registry exported", "format", format, "block", block, "meters", meters, "credential", p.ID)
	return nil
}
