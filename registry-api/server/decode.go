package server

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

// malformed is a request the API refuses before the ledger sees it.
func malformed(format string, args ...any) error {
	return meter.Errorf(meter.CodeMalformed, format, args...)
}

// mediaType returns the request's media type, refusing anything not listed.
func mediaType(c *gin.Context, accepted ...string) (string, error) {
	ct := c.GetHeader("Content-Type")
	if ct == "" {
		return "", &mediaError{"Content-Type is missing; send " + strings.Join(accepted, " or ")}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", &mediaError{"Content-Type " + strconv.Quote(ct) + " cannot be parsed"}
	}
	for _, a := range accepted {
		if mt == a {
			return mt, nil
		}
	}
	return "", &mediaError{"Content-Type " + mt + " is not accepted here; send " + strings.Join(accepted, " or ")}
}

type mediaError struct{ msg string }

func (e *mediaError) Error() string { return e.msg }

// decodeJSON reads the body strictly into v: one JSON value, no unknown
// fields, and a message that names what is wrong.
func decodeJSON(c *gin.Context, v any) error {
	if _, err := mediaType(c, "application/json"); err != nil {
		return err
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return err
	}
	return decodeStrict(body, v)
}

func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return malformed("the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("%s", describeJSONError(err, body))
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("the request body has data after its JSON value")
	}
	return nil
}

func describeJSONError(err error, body []byte) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the body"
		}
		return fmt.Sprintf("field %s must be %s, not %s", field, jsonKind(typ.Type.String()), typ.Value)
	case errors.As(err, &b64):
		return fmt.Sprintf("a base64 field is not standard base64 (error at byte %d of the field)", int64(b64))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + " (see the API description at " + api.Prefix + "/openapi.json)"
	}
	return "the JSON body cannot be read: " + err.Error()
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]uint8"):
		return "a base64 string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.Contains(goType, "int"):
		return "an integer"
	case goType == "string", strings.HasPrefix(goType, "meter."):
		return "a string"
	case goType == "bool":
		return "true or false"
	}
	return "an object"
}

// csvColumns are the columns of a batch registration in CSV: a
// manufacturer's delivery list with each meter's proof of possession for
// this NMI. Only identity and typeId may be left out.
var csvColumns = []string{"meterId", "publicKey", "manufacturer", "model", "serialNumber", "softwareId", "softwareChecksum", "proof", "identity", "typeId"}

// csvOptional are the columns a CSV may leave out.
var csvOptional = map[string]bool{"identity": true, "typeId": true}

// csvHeader maps each column a CSV's header row names to its index,
// refusing unknown, repeated and missing columns. nmi is the MSP ID the
// proofs must be made for, to name in the refusal of a CSV without them.
func csvHeader(header []string, nmi string) (map[string]int, error) {
	columns := strings.Join(csvColumns, ", ") + " (identity and typeId optional)"
	index := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if !slices.Contains(csvColumns, h) {
			return nil, malformed("CSV column %q is unknown; the columns are %s", h, columns)
		}
		if _, twice := index[h]; twice {
			return nil, malformed("CSV column %q appears twice in the header", h)
		}
		index[h] = i
	}
	for _, c := range csvColumns {
		if _, ok := index[c]; ok || csvOptional[c] {
			continue
		}
		if c == "proof" {
			return nil, malformed("the CSV lacks the column \"proof\": each meter's proof of possession, its DER signature (standard base64) with the key being registered over its registration statement for %s, made by the meter (pki meter prove); the columns are %s", nmi, columns)
		}
		return nil, malformed("the CSV lacks the column %q; the columns are %s", c, columns)
	}
	return index, nil
}

// readRegistrationsCSV reads a header row naming the columns and one meter
// per row, and returns the registrations with the line each row starts on.
// publicKey is a PEM block or the base64 of the DER SubjectPublicKeyInfo;
// proof is the meter's signature over its registration statement for nmi,
// checked later with the other rules.
func readRegistrationsCSV(body io.Reader, nmi string) ([]meter.Registration, []int, error) {
	r := csv.NewReader(body)
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, nil, csvError(err, "the CSV has no header row: %v", err)
	}
	index, err := csvHeader(header, nmi)
	if err != nil {
		return nil, nil, err
	}
	var out []meter.Registration
	var lines []int
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, csvError(err, "CSV %v", err)
		}
		if len(out) == api.MaxRegistrationBatch {
			return nil, nil, meter.Errorf(meter.CodeTooLarge, "the CSV holds more than %d meters; split it", api.MaxRegistrationBatch)
		}
		// A quoted PEM cell spans lines: the row is named by its first.
		line, _ := r.FieldPos(0)
		get := func(col string) string {
			if i, ok := index[col]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		key, err := publicKeyText(get("publicKey"))
		if err != nil {
			return nil, nil, malformed("CSV line %d (meter %q): %v", line, get("meterId"), err)
		}
		out = append(out, meter.Registration{
			MeterID: get("meterId"), PublicKey: key,
			Metadata: meter.Metadata{Manufacturer: get("manufacturer"), Model: get("model"), SerialNumber: get("serialNumber"),
				SoftwareID: get("softwareId"), SoftwareChecksum: get("softwareChecksum")},
			Identity: get("identity"),
			TypeID:   get("typeId"),
			Proof:    get("proof"),
		})
		lines = append(lines, line)
	}
	return out, lines, nil
}

// csvError keeps a body over the route's limit as such (413), since the CSV
// is read as it streams in; anything else is a malformed CSV.
func csvError(err error, format string, args ...any) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return malformed(format, args...)
}

// publicKeyText accepts a PEM block as is, or the base64 of a DER
// SubjectPublicKeyInfo, which a CSV cell holds more easily.
func publicKeyText(s string) (string, error) {
	if strings.HasPrefix(s, "-----BEGIN") {
		return s, nil
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", errors.New("publicKey is neither PEM nor base64 DER")
	}
	k, err := meter.ParsePublicKeyDER(der)
	if err != nil {
		return "", err
	}
	return k.PEM(), nil
}

// bodyError sorts a body-reading failure into its problem.
func (s *Server) bodyError(c *gin.Context, err error) {
	var media *mediaError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &media):
		fail(c, problem(api.CodeUnsupportedMedia, media.msg))
	case errors.As(err, &tooBig):
		fail(c, problem(string(meter.CodeTooLarge), fmt.Sprintf("the request body exceeds %d bytes, the limit of this endpoint", tooBig.Limit)))
	default:
		s.failErr(c, err)
	}
}
