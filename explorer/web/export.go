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
	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// csvHeader names the registry export's columns (docs/explorer.md):
// softwareId and softwareChecksum are the registered software, the
// current* columns the software the meter runs as of the block, and
// softwareStatus where that stands with its type then.
var csvHeader = []string{"meterId", "nmi", "status", "keyVersion", "curve", "fingerprint", "manufacturer", "model",
	"serialNumber", "softwareId", "softwareChecksum", "revocationReason", "revokedAt", "invalidityDate", "txId", "block",
	"typeId", "currentSoftwareId", "currentSoftwareChecksum", "currentSoftwareSince", "softwareStatus"}

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

// Downloads' names.
const (
	registryName = "meter-registry"
	typesName    = "meter-types"
)

// attachment names the download after what it is, the channel and the
// block.
func (s *Server) attachment(w http.ResponseWriter, name string, block uint64, ext string) {
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
	judge, err := s.softwareAt(block)
	if err != nil {
		return err
	}
	s.attachment(w, registryName, block, "csv")
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
		sw := m.CurrentSoftware()
		n++
		return out.Write([]string{cell(m.ID), cell(m.NMI), cell(string(m.Status)), strconv.Itoa(m.KeyVersion), cell(string(m.Curve)),
			cell(m.Fingerprint), cell(m.Metadata.Manufacturer), cell(m.Metadata.Model), cell(m.Metadata.SerialNumber),
			cell(m.Metadata.SoftwareID), cell(m.Metadata.SoftwareChecksum), cell(reason), cell(revokedAt), cell(invalidity),
			cell(e.TxID), strconv.FormatUint(e.Block, 10),
			cell(m.TypeID), cell(sw.ID), cell(sw.Checksum), cell(softwareSince(&m)), judge(&m)})
	})
	if err == nil {
		out.Flush()
		err = out.Error()
	}
	if err == nil {
		err = buf.Flush()
	}
	return s.exported(w, r, sent, registryName, "csv", block, n, err)
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

// registryEntry is a meter of the JSON export: its record as the block
// left it, with the software it ran then and where that stood with its
// type.
type registryEntry struct {
	index.Entry
	CurrentSoftware meter.Software `json:"currentSoftware"`
	SoftwareStatus  string         `json:"softwareStatus,omitempty"`
}

// softwareAt returns what a meter's software was as of a block (its
// time): where it stood with the meter's type as the block left the type
// (softwareState), "" for a meter of no type or of a type not recorded by
// then.
func (s *Server) softwareAt(block uint64) (func(m *meter.Meter) string, error) {
	b, err := s.store.Block(block)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", block, err)
	}
	types := map[string]*meter.MeterType{}
	err = s.store.TypesAt(block, func(st index.TypeState) error {
		types[st.Type.ID] = &st.Type
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meter types as of block %d: %w", block, err)
	}
	return func(m *meter.Meter) string {
		mt := types[m.TypeID]
		if mt == nil {
			return ""
		}
		state, _ := softwareState(mt, m.CurrentSoftware(), b.Time)
		return state
	}, nil
}

// exportJSON streams the registry as it stood after a block: one object,
// its meters an array written entry by entry.
func (s *Server) exportJSON(w http.ResponseWriter, r *http.Request) error {
	block, err := s.exportBlock(r)
	if err != nil {
		return err
	}
	judge, err := s.softwareAt(block)
	if err != nil {
		return err
	}
	s.attachment(w, registryName, block, "json")
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
		return enc.Encode(registryEntry{Entry: e, CurrentSoftware: e.Meter.CurrentSoftware(), SoftwareStatus: judge(&e.Meter)})
	})
	if err == nil {
		buf.WriteString("]}\n")
		err = buf.Flush()
	}
	return s.exported(w, r, sent, registryName, "json", block, n, err)
}

// typesHeader names the columns of the types export: a row per version of
// each type (docs/explorer.md).
var typesHeader = []string{"typeId", "nmi", "manufacturer", "model", "certificate", "softwareId", "softwareChecksum", "status",
	"approvedFrom", "approvedTx", "withdrawnFrom", "withdrawalReason", "withdrawalTx", "recordedTx", "txId", "block"}

// exportTypesCSV streams the meter types as they stood after a block, a
// row per software version, with where each stood at the block's time.
func (s *Server) exportTypesCSV(w http.ResponseWriter, r *http.Request) error {
	block, err := s.exportBlock(r)
	if err != nil {
		return err
	}
	b, err := s.store.Block(block)
	if err != nil {
		return fmt.Errorf("block %d: %w", block, err)
	}
	s.attachment(w, typesName, block, "csv")
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	sent := &countingWriter{w: w}
	buf := bufio.NewWriterSize(sent, 64<<10)
	out := csv.NewWriter(buf)
	out.Write(typesHeader)
	n := 0
	err = s.store.TypesAt(block, func(st index.TypeState) error {
		mt := &st.Type
		n++
		for _, v := range mt.Versions {
			state, _ := softwareState(mt, v.Software, b.Time)
			var from, reason, tx string
			if w := v.Withdrawal; w != nil {
				from, reason, tx = w.From, w.Reason, w.TxID
			}
			if err := out.Write([]string{cell(mt.ID), cell(mt.NMI), cell(mt.Manufacturer), cell(mt.Model), cell(mt.Certificate),
				cell(v.ID), cell(v.Checksum), state, cell(v.ApprovedFrom), cell(v.ApprovedTx), cell(from), cell(reason), cell(tx),
				cell(mt.RecordedTx), cell(st.TxID), strconv.FormatUint(st.Block, 10)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		out.Flush()
		err = out.Error()
	}
	if err == nil {
		err = buf.Flush()
	}
	return s.exported(w, r, sent, typesName, "csv", block, n, err)
}

// exportTypesJSON streams the meter types as they stood after a block:
// one object, its types an array of each type's record with the
// transaction and block that set it.
func (s *Server) exportTypesJSON(w http.ResponseWriter, r *http.Request) error {
	block, err := s.exportBlock(r)
	if err != nil {
		return err
	}
	s.attachment(w, typesName, block, "json")
	w.Header().Set("Content-Type", "application/json")
	head, err := json.Marshal(registryHeader{Channel: s.channel, AsOfBlock: block, ExportedAt: s.now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	sent := &countingWriter{w: w}
	buf := bufio.NewWriterSize(sent, 64<<10)
	buf.Write(head[:len(head)-1])
	buf.WriteString(`,"types":[`)
	enc := json.NewEncoder(buf)
	n := 0
	err = s.store.TypesAt(block, func(st index.TypeState) error {
		if n > 0 {
			buf.WriteByte(',')
		}
		n++
		return enc.Encode(st)
	})
	if err == nil {
		buf.WriteString("]}\n")
		err = buf.Flush()
	}
	return s.exported(w, r, sent, typesName, "json", block, n, err)
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

// exported logs an export (what: registryName or typesName) of entries
// meters or types. A failure before anything was sent is the error page's;
// once the download has begun its status is sent, so a failure can only be
// logged and the download cut short.
func (s *Server) exported(w http.ResponseWriter, r *http.Request, sent *countingWriter, what, format string, block uint64, entries int, err error) error {
	p, _ := principalFrom(r.Context())
	if err != nil && sent.n == 0 {
		w.Header().Del("Content-Disposition")
		return fmt.Errorf("export the %s as of block %d: %w", what, block, err)
	}
	if err != nil {
		s.log.Error("export cut short", "what", what, "format", format, "block", block, "entries", entries, "credential", p.ID, "err", err)
		return nil
	}
	s.log.Info("exported", "what", what, "format", format, "block", block, "entries", entries, "credential", p.ID)
	return nil
}
