package server

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/inter-nmi/pki/network/pkg/channel"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

// doc is the parsed openapi.yaml.
type doc map[string]any

var loadDoc = sync.OnceValues(func() (doc, error) {
	// A plain map: yaml.v3 would make every nested map a doc too.
	var m map[string]any
	if err := yaml.Unmarshal(openAPIDoc, &m); err != nil {
		return nil, err
	}
	return doc(m), nil
})

func theDoc(t testing.TB) doc {
	t.Helper()
	d, err := loadDoc()
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return d
}

// reporter is the part of testing.TB the answer checker needs.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// obj follows a path of keys through nested maps; nil if any is missing.
func obj(v any, keys ...string) map[string]any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

// resolve follows a local $ref.
func (d doc) resolve(v map[string]any) map[string]any {
	for v != nil {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v
		}
		path := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		v = obj(map[string]any(d), path...)
	}
	return v
}

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// operations lists "METHOD /path" of every documented operation.
func (d doc) operations() []string {
	var out []string
	for path, item := range obj(map[string]any(d), "paths") {
		for _, m := range methods {
			if _, ok := item.(map[string]any)[m]; ok {
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := theDoc(t)
	if d["openapi"] != "3.0.3" {
		t.Errorf("openapi = %v, want 3.0.3", d["openapi"])
	}
	documented := d.operations()
	var served []string
	for _, r := range newFixture(t).srv.Routes() {
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		served = append(served, r.Method+" "+strings.Join(segs, "/"))
	}
	sort.Strings(served)
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("served but not documented: %s", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("documented but not served: %s", op)
		}
	}
	if len(served) < 22 {
		t.Errorf("only %d routes served; the route list looks wrong", len(served))
	}
}

// TestOpenAPIOperations checks each operation is complete: a summary, a
// description naming who may call it, path parameters for every template
// segment, and the right security.
func TestOpenAPIOperations(t *testing.T) {
	d := theDoc(t)
	if s := obj(map[string]any(d), "components", "securitySchemes", "bearerAuth"); s["type"] != "http" || s["scheme"] != "bearer" {
		t.Errorf("securityScheme bearerAuth = %v, want http bearer", s)
	}
	public := []string{"/healthz", "/readyz", api.Prefix + "/openapi.json", api.Prefix + "/openapi.yaml"}
	for _, op := range d.operations() {
		method, path, _ := strings.Cut(op, " ")
		o := obj(map[string]any(d), "paths", path, strings.ToLower(method))
		if o["summary"] == nil || o["description"] == nil || o["operationId"] == nil {
			t.Errorf("%s lacks summary, description or operationId", op)
		}
		desc, _ := o["description"].(string)
		sec, hasSec := o["security"].([]any)
		if slices.Contains(public, path) {
			if !hasSec || len(sec) != 0 || !strings.Contains(desc, "no authentication") {
				t.Errorf("%s needs no authentication: want security [] and a description saying so", op)
			}
		} else if hasSec || !strings.Contains(desc, "Role: ") {
			t.Errorf("%s: want the global bearerAuth security and a description naming its roles (Role: ...)", op)
		}
		var inPath []string
		params, _ := o["parameters"].([]any)
		for _, p := range params {
			if p := d.resolve(p.(map[string]any)); p["in"] == "path" {
				inPath = append(inPath, "{"+p["name"].(string)+"}")
			}
		}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") && !slices.Contains(inPath, seg) {
				t.Errorf("%s has no path parameter %s", op, seg)
			}
		}
		for code := range obj(o, "responses") {
			if n, err := strconv.Atoi(code); err != nil || n < 100 || n > 599 {
				t.Errorf("%s: response key %q is not a status code", op, code)
			}
		}
	}
}

// TestOpenAPIRefsResolve finds every $ref that points nowhere.
func TestOpenAPIRefsResolve(t *testing.T) {
	d := theDoc(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && d.resolve(v) == nil {
				t.Errorf("%s: $ref %s points nowhere", where, ref)
			}
			for k, e := range v {
				walk(where+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", where, i), e)
			}
		}
	}
	walk("#", map[string]any(d))
}

func TestOpenAPIServed(t *testing.T) {
	f := newFixture(t)
	rec := f.do(get(api.Prefix+"/openapi.yaml", ""))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/yaml" || rec.Body.String() != string(openAPIDoc) {
		t.Errorf("openapi.yaml: status %d, Content-Type %q, %d bytes; want 200, application/yaml and the embedded document",
			rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	rec = f.do(get(api.Prefix+"/openapi.json", ""))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatal("openapi.json is not valid JSON")
	}
	var fromJSON any
	if err := json.Unmarshal(rec.Body.Bytes(), &fromJSON); err != nil {
		t.Fatal(err)
	}
	// The YAML as JSON would see it: through a JSON round trip.
	b, err := json.Marshal(map[string]any(theDoc(t)))
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML any
	if err := json.Unmarshal(b, &fromYAML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Error("openapi.json differs in content from openapi.yaml")
	}
	if p := obj(fromJSON, "paths", "/api/v1/meters", "post", "responses", "201"); p == nil {
		t.Error("openapi.json lacks the 201 of POST /api/v1/meters: status keys must stay strings")
	}
	if n := len(f.ledger.recorded()); n != 0 {
		t.Errorf("serving the description made %d ledger calls", n)
	}
}

func TestOpenAPIProblemCodes(t *testing.T) {
	d := theDoc(t)
	var documented []string
	for _, c := range obj(map[string]any(d), "components", "schemas", "ProblemCode")["enum"].([]any) {
		documented = append(documented, c.(string))
	}
	var mapped []string
	for c := range statusOf {
		mapped = append(mapped, c)
	}
	sort.Strings(documented)
	sort.Strings(mapped)
	if !slices.Equal(documented, mapped) {
		t.Errorf("ProblemCode enum %v\ndiffers from the codes problem.go maps %v", documented, mapped)
	}
	var refusals []string
	for _, c := range obj(map[string]any(d), "components", "schemas", "RefusalCode")["enum"].([]any) {
		refusals = append(refusals, c.(string))
	}
	var codes []string
	for _, c := range slices.Concat(meter.Codes, agreement.Codes) {
		codes = append(codes, string(c))
	}
	sort.Strings(refusals)
	sort.Strings(codes)
	if !slices.Equal(refusals, codes) {
		t.Errorf("RefusalCode enum %v\ndiffers from the contracts' codes %v", refusals, codes)
	}
}

// TestOpenAPIRegistrationProof holds the description of registration to
// the server: the proof is a required field of a registration, and the CSV
// columns are those the server reads, its example a header it accepts.
func TestOpenAPIRegistrationProof(t *testing.T) {
	d := theDoc(t)
	reg := obj(map[string]any(d), "components", "schemas", "Registration")
	required, _ := reg["required"].([]any)
	if !slices.Contains(required, any("proof")) {
		t.Errorf("Registration.required %v lacks proof", required)
	}
	if desc, _ := obj(reg, "properties", "proof")["description"].(string); !strings.Contains(desc, `{"type":"meterRegistration","meterId":<id>,"nmi":`) {
		t.Errorf("Registration.proof does not spell out the registration statement: %q", desc)
	}
	media := obj(map[string]any(d), "paths", "/api/v1/meters/batch", "post", "requestBody", "content", "text/csv")
	desc, _ := obj(media, "schema")["description"].(string)
	// "...the columns, in any order: meterId, publicKey, ... and, optionally, identity; ..."
	_, list, _ := strings.Cut(desc, "in any order:")
	list, _, _ = strings.Cut(list, ";")
	var named []string
	for _, w := range strings.Fields(strings.ReplaceAll(list, ",", " ")) {
		if w != "and" && w != "optionally" {
			named = append(named, w)
		}
	}
	if !slices.Equal(named, csvColumns) {
		t.Errorf("the CSV description names the columns %q, the server reads %q", named, csvColumns)
	}
	example, _ := media["example"].(string)
	header, _, _ := strings.Cut(example, "\n")
	if _, err := csvHeader(strings.Split(header, ","), fixtureNMI); err != nil {
		t.Errorf("the CSV example's header %q is refused: %v", header, err)
	}
}

// schemaTypes maps each component schema that describes a Go type to it.
var schemaTypes = map[string]reflect.Type{
	"Problem":                reflect.TypeFor[api.Problem](),
	"TransactionStatus":      reflect.TypeFor[api.TransactionStatus](),
	"Metadata":               reflect.TypeFor[meter.Metadata](),
	"Registration":           reflect.TypeFor[meter.Registration](),
	"Revocation":             reflect.TypeFor[meter.Revocation](),
	"Meter":                  reflect.TypeFor[meter.Meter](),
	"KeyVersion":             reflect.TypeFor[meter.KeyVersion](),
	"MeterVersion":           reflect.TypeFor[api.MeterVersion](),
	"MeterReceipt":           reflect.TypeFor[api.MeterReceipt](),
	"MeterList":              reflect.TypeFor[api.MeterList](),
	"BatchTx":                reflect.TypeFor[api.BatchTx](),
	"Enrolment":              reflect.TypeFor[api.Enrolment](),
	"PreEnrolmentRequest":    reflect.TypeFor[api.PreEnrolmentRequest](),
	"PreEnrolment":           reflect.TypeFor[meter.PreEnrolment](),
	"PreEnrolmentReceipt":    reflect.TypeFor[api.PreEnrolmentReceipt](),
	"VoteRequest":            reflect.TypeFor[api.VoteRequest](),
	"AttestationBundle":      reflect.TypeFor[proof.Bundle](),
	"Tally":                  reflect.TypeFor[api.Tally](),
	"VoteReceipt":            reflect.TypeFor[api.VoteReceipt](),
	"Vote":                   reflect.TypeFor[api.Vote](),
	"VoteList":               reflect.TypeFor[api.VoteList](),
	"RotateRequest":          reflect.TypeFor[api.RotateRequest](),
	"RevokeRequest":          reflect.TypeFor[api.RevokeRequest](),
	"SignedMeasurement":      reflect.TypeFor[meter.SignedMeasurement](),
	"MeasurementBatch":       reflect.TypeFor[api.MeasurementBatch](),
	"MeasurementReceipt":     reflect.TypeFor[api.MeasurementReceipt](),
	"ItemResult":             reflect.TypeFor[meter.ItemResult](),
	"BatchReceipt":           reflect.TypeFor[api.BatchReceipt](),
	"Verification":           reflect.TypeFor[meter.Verification](),
	"MeasurementRecord":      reflect.TypeFor[meter.MeasurementRecord](),
	"MeasurementList":        reflect.TypeFor[api.MeasurementList](),
	"Rejection":              reflect.TypeFor[meter.Rejection](),
	"RejectionList":          reflect.TypeFor[api.RejectionList](),
	"Finding":                reflect.TypeFor[api.Finding](),
	"FindingList":            reflect.TypeFor[api.FindingList](),
	"Member":                 reflect.TypeFor[channel.Member](),
	"Consenter":              reflect.TypeFor[channel.Consenter](),
	"Chaincode":              reflect.TypeFor[api.Chaincode](),
	"Consortium":             reflect.TypeFor[api.Consortium](),
	"PeriodStatement":        reflect.TypeFor[agreement.PeriodStatement](),
	"TariffStatement":        reflect.TypeFor[agreement.TariffStatement](),
	"KeyStatement":           reflect.TypeFor[agreement.KeyStatement](),
	"BillStatement":          reflect.TypeFor[agreement.BillStatement](),
	"BillingPeriodRequest":   reflect.TypeFor[api.BillingPeriodRequest](),
	"TariffAgreementRequest": reflect.TypeFor[api.TariffAgreementRequest](),
	"KeyIssuedRequest":       reflect.TypeFor[api.KeyIssuedRequest](),
	"BillRequest":            reflect.TypeFor[api.BillRequest](),
	"TariffRecord":           reflect.TypeFor[agreement.TariffRecord](),
	"KeyRecord":              reflect.TypeFor[agreement.KeyRecord](),
	"BillRecord":             reflect.TypeFor[agreement.BillRecord](),
	"BillingRecord":          reflect.TypeFor[agreement.Record](),
	"BillingReceipt":         reflect.TypeFor[api.BillingReceipt](),
	"Software":               reflect.TypeFor[meter.Software](),
	"Withdrawal":             reflect.TypeFor[meter.Withdrawal](),
	"ApprovedSoftware":       reflect.TypeFor[meter.ApprovedSoftware](),
	"MeterType":              reflect.TypeFor[meter.MeterType](),
	"VersionApproval":        reflect.TypeFor[api.ApproveRequest](),
	"TypeRecord":             reflect.TypeFor[api.TypeRecordRequest](),
	"TypeVersion":            reflect.TypeFor[api.TypeVersion](),
	"TypeReceipt":            reflect.TypeFor[api.TypeReceipt](),
	"TypeList":               reflect.TypeFor[api.TypeList](),
	"WithdrawRequest":        reflect.TypeFor[api.WithdrawRequest](),
	"AssignTypeRequest":      reflect.TypeFor[api.AssignTypeRequest](),
	"Installed":              reflect.TypeFor[meter.Installed](),
	"UpdateMark":             reflect.TypeFor[meter.UpdateMark](),
	"SignedUpdate":           reflect.TypeFor[api.SoftwareUpdate](),
	"UpdateReport":           reflect.TypeFor[meter.UpdateReport](),
	"SoftwareUpdateReceipt":  reflect.TypeFor[api.SoftwareUpdateReceipt](),
	"MeterSoftware":          reflect.TypeFor[api.MeterSoftware](),
}

// requestSchemas describe request bodies only.
var requestSchemas = map[string]bool{"Registration": true, "PreEnrolmentRequest": true, "RotateRequest": true,
	"RevokeRequest": true, "SignedMeasurement": true, "MeasurementBatch": true,
	"BillingPeriodRequest": true, "TariffAgreementRequest": true, "KeyIssuedRequest": true, "BillRequest": true,
	"TypeRecord": true, "VersionApproval": true, "WithdrawRequest": true, "AssignTypeRequest": true, "SignedUpdate": true}

// jsonField is one field as encoding/json writes it.
type jsonField struct {
	name     string
	typ      reflect.Type
	optional bool
}

// jsonFields lists a struct's JSON fields, embedded structs flattened.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			out = append(out, jsonFields(sf.Type)...)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, jsonField{name: name, typ: sf.Type, optional: strings.Contains(opts, "omitempty")})
	}
	return out
}

// TestOpenAPISchemasMatchTypes holds every documented schema to its Go type:
// the same field names as the json tags, required exactly when the field is
// not omitempty, and compatible types (a nested struct by the schema of its
// type).
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	d := theDoc(t)
	schemas := obj(map[string]any(d), "components", "schemas")
	schemaOf := map[reflect.Type]string{}
	for name, typ := range schemaTypes {
		schemaOf[typ] = name
	}
	for name, s := range schemas {
		if _, ok := schemaTypes[name]; !ok && s.(map[string]any)["type"] == "object" {
			t.Errorf("schema %s describes no Go type this test knows; add it to schemaTypes", name)
		}
	}
	var typeOK func(where string, typ reflect.Type, s map[string]any)
	typeOK = func(where string, typ reflect.Type, s map[string]any) {
		ref, _ := s["$ref"].(string)
		s = d.resolve(s)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		want := ""
		switch typ.Kind() {
		case reflect.String:
			want = "string"
		case reflect.Bool:
			want = "boolean"
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
			want = "integer"
		case reflect.Slice:
			if typ.Elem().Kind() == reflect.Uint8 {
				want = "string"
				if s["format"] != "byte" {
					t.Errorf("%s: a []byte field is base64: want format byte", where)
				}
				break
			}
			want = "array"
			if items := obj(s, "items"); items != nil {
				typeOK(where+"[]", typ.Elem(), items)
			}
		case reflect.Struct:
			if got := strings.TrimPrefix(ref, "#/components/schemas/"); schemaOf[typ] != got {
				t.Errorf("%s: %v is documented by schema %s; want $ref to %q", where, typ, schemaOf[typ], got)
			}
			return
		}
		if s["type"] != want {
			t.Errorf("%s: type %v, want %s for Go %v", where, s["type"], want, typ)
		}
	}
	for name, typ := range schemaTypes {
		s := obj(schemas, name)
		if s == nil {
			t.Errorf("schema %s is missing", name)
			continue
		}
		props := obj(s, "properties")
		var required []string
		req, _ := s["required"].([]any)
		for _, r := range req {
			required = append(required, r.(string))
		}
		var names []string
		for _, f := range jsonFields(typ) {
			names = append(names, f.name)
			p := obj(props, f.name)
			if p == nil {
				t.Errorf("%s: field %s of %v is not documented", name, f.name, typ)
				continue
			}
			switch isRequired := slices.Contains(required, f.name); {
			case f.optional && isRequired:
				t.Errorf("%s.%s is required, but the field is omitempty", name, f.name)
			// A request may leave out a field the server fills in.
			case !f.optional && !isRequired && !requestSchemas[name]:
				t.Errorf("%s.%s is not required, but every answer has it (not omitempty)", name, f.name)
			}
			typeOK(name+"."+f.name, f.typ, p)
		}
		for p := range props {
			if !slices.Contains(names, p) {
				t.Errorf("%s: property %s is not a field of %v", name, p, typ)
			}
		}
	}
}

// The documented answers are checked on every request a test makes.

var (
	compiledMu sync.Mutex
	compiled   = map[string]*gojsonschema.Schema{}
)

// jsonSchema turns an OpenAPI 3.0 schema into a draft-4 JSON Schema whose
// definitions are the document's component schemas. Objects refuse
// properties the description does not list, so an undocumented field of an
// answer is found.
func jsonSchema(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			switch k {
			case "$ref":
				out[k] = strings.Replace(e.(string), "#/components/schemas/", "#/definitions/", 1)
			case "nullable", "example":
			default:
				out[k] = jsonSchema(e)
			}
		}
		if v["nullable"] == true {
			out["type"] = []any{v["type"], "null"}
		}
		if _, ok := v["properties"]; ok && v["additionalProperties"] == nil {
			out["additionalProperties"] = false
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonSchema(e)
		}
		return out
	}
	return v
}

func schemaFor(t reporter, d doc, key string, s map[string]any) *gojsonschema.Schema {
	compiledMu.Lock()
	defer compiledMu.Unlock()
	if c, ok := compiled[key]; ok {
		return c
	}
	root := jsonSchema(s).(map[string]any)
	root["definitions"] = jsonSchema(obj(map[string]any(d), "components", "schemas"))
	c, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(root))
	if err != nil {
		t.Errorf("schema of %s: %v", key, err)
		return nil
	}
	compiled[key] = c
	return c
}

// matchPath finds the documented path template of a request path that has
// the method, preferring literal segments as the router does. It reports
// whether any template matches the path at all.
func (d doc) matchPath(method, path string) (template string, pathKnown bool) {
	segs := strings.Split(path, "/")
	best := -1
	for tmpl, item := range obj(map[string]any(d), "paths") {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		literal := 0
		for i := range ts {
			switch {
			case strings.HasPrefix(ts[i], "{") && segs[i] != "":
			case ts[i] == segs[i]:
				literal++
			default:
				literal = -1
			}
			if literal < 0 {
				break
			}
		}
		if literal < 0 {
			continue
		}
		pathKnown = true
		if _, ok := item.(map[string]any)[strings.ToLower(method)]; ok && literal > best {
			template, best = tmpl, literal
		}
	}
	return template, pathKnown
}

// checkDocumented fails the test if the answer to req is not one the API
// description lists for the operation: its status, its media type and, for
// JSON, its body's schema.
func checkDocumented(t reporter, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	d, err := loadDoc()
	if err != nil {
		t.Errorf("openapi.yaml: %v", err)
		return
	}
	where := req.Method + " " + req.URL.Path
	tmpl, known := d.matchPath(req.Method, req.URL.Path)
	switch {
	case tmpl == "" && known:
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: undocumented method answered %d, want 405", where, rec.Code)
		}
		return
	case tmpl == "":
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: undocumented path answered %d, want 404", where, rec.Code)
		}
		return
	}
	op := obj(map[string]any(d), "paths", tmpl, strings.ToLower(req.Method))
	resp := d.resolve(obj(op, "responses", strconv.Itoa(rec.Code)))
	if resp == nil {
		t.Errorf("%s answered %d, which the description of %s %s does not list; body %s", where, rec.Code, req.Method, tmpl, rec.Body)
		return
	}
	ct := rec.Header().Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", where, ct, err)
		return
	}
	media := obj(resp, "content", mt)
	if media == nil {
		t.Errorf("%s: %d answered %s, which the description does not list", where, rec.Code, mt)
		return
	}
	if mt != "application/json" && mt != "application/problem+json" {
		return
	}
	key := fmt.Sprintf("%s %s %d %s", req.Method, tmpl, rec.Code, mt)
	schema := schemaFor(t, d, key, obj(media, "schema"))
	if schema == nil {
		return
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(rec.Body.Bytes()))
	if err != nil {
		t.Errorf("%s: validate answer: %v", where, err)
		return
	}
	for _, e := range res.Errors() {
		t.Errorf("%s: the %d answer does not match its documented schema: %s", where, rec.Code, e)
	}
}

// TestCheckDocumented makes sure the checker itself finds what it should.
func TestCheckDocumented(t *testing.T) {
	cases := []struct {
		name, method, path string
		status             int
		contentType, body  string
		fails              bool
	}{
		{"valid", "GET", "/healthz", 200, "application/json", `{"status":"ok"}`, false},
		{"undocumented status", "GET", "/healthz", 500, "application/json", `{}`, true},
		{"undocumented field", "GET", "/healthz", 200, "application/json", `{"status":"ok","x":1}`, true},
		{"wrong enum", "GET", "/healthz", 200, "application/json", `{"status":"bad"}`, true},
		{"undocumented media type", "GET", "/healthz", 200, "text/html", `<p>`, true},
		{"problem without code", "GET", "/api/v1/meters/PTB-1", 404, "application/problem+json", `{"type":"x","title":"t","status":404,"detail":"d"}`, true},
		{"meter with a bad curve", "GET", "/api/v1/meters/PTB-1", 200, "application/json",
			strings.Replace(jsonText(meterRecord("PTB-1", "")), "P-256", "P-224", 1), true},
		{"meter", "GET", "/api/v1/meters/PTB-1", 200, "application/json", jsonText(meterRecord("PTB-1", "")), false},
		{"unknown path", "GET", "/nothing", 404, "application/problem+json", `{}`, false},
		{"unknown path answered 200", "GET", "/nothing", 200, "application/json", `{}`, true},
		{"other method", "DELETE", "/healthz", 405, "application/problem+json", `{}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", c.contentType)
			rec.WriteHeader(c.status)
			rec.WriteString(c.body)
			var r recordingReporter
			checkDocumented(&r, httptest.NewRequest(c.method, c.path, nil), rec)
			if failed := len(r.errors) > 0; failed != c.fails {
				t.Errorf("checker failed = %v, want %v: %v", failed, c.fails, r.errors)
			}
		})
	}
}

// recordingReporter keeps the checker's complaints instead of failing.
type recordingReporter struct{ errors []string }

func (r *recordingReporter) Helper() {}
func (r *recordingReporter) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
