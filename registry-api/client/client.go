// Package client is the Go client of the registry API, used by the operator
// CLI, the meter simulator and the tests. Every write carries an
// Idempotency-Key, and a write that fails in a way worth retrying (no answer,
// 503, 504) is retried with the same key, so it is never applied twice.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/inter-nmi/pki/pki-chaincode/agreement"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
)

// Options configure a Client.
type Options struct {
	// BaseURL is the registry's address, e.g. https://127.0.0.1:8081.
	BaseURL string
	// Token is the bearer credential.
	Token string
	// CACert is a PEM file of the CA that issued the registry's TLS
	// certificate; empty means the system roots.
	CACert string
	// Timeout bounds one HTTP exchange (default 2 minutes).
	Timeout time.Duration
	// Retries is how often a write is retried after a transient failure
	// (default 3).
	Retries int
	// MaxConns bounds the connections kept open to the registry (default 100).
	MaxConns int
}

// Client talks to one NMI's registry.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	retries int
}

// New builds a client.
func New(o Options) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("registry URL %q is not an absolute URL", o.BaseURL)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", o.CACert)
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.MaxConns == 0 {
		o.MaxConns = 100
	}
	transport := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConns: o.MaxConns, MaxIdleConnsPerHost: o.MaxConns,
		MaxConnsPerHost: o.MaxConns, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &Client{base: base, token: o.Token, http: &http.Client{Transport: transport, Timeout: o.Timeout}, retries: o.Retries}, nil
}

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	contentType  string
	body         []byte
	write        bool
}

// do sends req and decodes a 2xx answer into out; any other answer is
// returned as an *api.Problem.
func (c *Client) do(ctx context.Context, req request, out any) error {
	key := ""
	if req.write {
		key = newKey()
	}
	var err error
	for attempt := 0; ; attempt++ {
		var retry bool
		var after time.Duration
		retry, after, err = c.once(ctx, req, key, out)
		if err == nil || !retry || !req.write || attempt >= c.retries {
			return err
		}
		wait := max(time.Duration(200*(1<<min(attempt, 6)))*time.Millisecond, min(after, 30*time.Second))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// once sends req and says whether a failure is worth retrying with the same
// Idempotency-Key, and after how long the server asked to wait.
func (c *Client) once(ctx context.Context, req request, key string, out any) (retry bool, after time.Duration, err error) {
	// req.path is escaped already (url.PathEscape of the meter ID): keep that
	// form as the raw path, or the URL would escape its % signs again.
	path, err := url.PathUnescape(req.path)
	if err != nil {
		return false, 0, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	u := *c.base
	u.RawPath = c.base.EscapedPath() + req.path
	u.Path += path
	u.RawQuery = req.query.Encode()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return false, 0, err
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	if key != "" {
		hr.Header.Set("Idempotency-Key", key)
	}
	hr.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		return ctx.Err() == nil, 0, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return true, 0, fmt.Errorf("%s %s: read answer: %w", req.method, req.path, err)
	}
	if resp.StatusCode/100 != 2 {
		p := &api.Problem{Status: resp.StatusCode}
		if json.Unmarshal(b, p) != nil || p.Code == "" {
			p.Code, p.Detail = "HTTP_"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
		}
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		// 503 and 504 (the outcome unknown included: the retry learns it),
		// and 409 while the same key's first attempt is still being worked
		// on after this client gave up waiting for it.
		retry := resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout ||
			(resp.StatusCode == http.StatusConflict && p.Code == api.CodeIdempotencyConflict)
		return retry, time.Duration(after) * time.Second, p
	}
	if out == nil {
		return false, 0, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return false, 0, fmt.Errorf("%s %s: decode answer: %w", req.method, req.path, err)
	}
	return false, 0, nil
}

func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func post(path string, v any) request {
	return request{method: http.MethodPost, path: api.Prefix + path, contentType: "application/json", body: jsonBody(v), write: true}
}

func get(path string, q url.Values) request {
	return request{method: http.MethodGet, path: api.Prefix + path, query: q}
}

func call[T any](ctx context.Context, c *Client, req request) (*T, error) {
	out := new(T)
	if err := c.do(ctx, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ProblemCode returns the problem code of an error from this client, or "".
func ProblemCode(err error) string {
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return ""
}

// RegisterMeter registers one meter. reg carries the meter's proof of
// possession for the registry's NMI (meter.Registration.Prove, with the MSP
// ID that Consortium names); without it the registry refuses BAD_SIGNATURE.
func (c *Client) RegisterMeter(ctx context.Context, reg meter.Registration) (*api.MeterReceipt, error) {
	return call[api.MeterReceipt](ctx, c, post("/meters", reg))
}

// RegisterMeters registers a batch given as registrations, each proved by
// its meter for the registry's NMI.
func (c *Client) RegisterMeters(ctx context.Context, regs []meter.Registration) (*api.Enrolment, error) {
	return call[api.Enrolment](ctx, c, post("/meters/batch", regs))
}

// RegisterMetersCSV registers a batch given as a manufacturer's CSV, with
// each meter's proof in its proof column.
func (c *Client) RegisterMetersCSV(ctx context.Context, csv []byte) (*api.Enrolment, error) {
	return call[api.Enrolment](ctx, c, request{method: http.MethodPost, path: api.Prefix + "/meters/batch",
		contentType: "text/csv", body: csv, write: true})
}

// PreEnrol announces a meter by the SHA-256 of its identity.
func (c *Client) PreEnrol(ctx context.Context, req api.PreEnrolmentRequest) (*api.PreEnrolmentReceipt, error) {
	return call[api.PreEnrolmentReceipt](ctx, c, post("/pre-enrolments", req))
}

// Read options: MinBlock makes the registry wait until its peer has that
// block, to read what was just written through another NMI.
type Read struct {
	MinBlock uint64
}

func (r Read) query() url.Values {
	q := url.Values{}
	if r.MinBlock > 0 {
		q.Set("minBlock", strconv.FormatUint(r.MinBlock, 10))
	}
	return q
}

// GetMeter reads a meter.
func (c *Client) GetMeter(ctx context.Context, id string, r Read) (*meter.Meter, error) {
	return call[meter.Meter](ctx, c, get("/meters/"+url.PathEscape(id), r.query()))
}

// ListOptions filter and page ListMeters.
type ListOptions struct {
	Read
	NMI, Status, Cursor string
	Limit               int
}

// ListMeters lists one page of meters.
func (c *Client) ListMeters(ctx context.Context, o ListOptions) (*api.MeterList, error) {
	q := o.query()
	setIf(q, "nmi", o.NMI)
	setIf(q, "status", o.Status)
	setIf(q, "cursor", o.Cursor)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return call[api.MeterList](ctx, c, get("/meters", q))
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// MeterHistory reads every version of a meter's record.
func (c *Client) MeterHistory(ctx context.Context, id string, r Read) ([]api.MeterVersion, error) {
	out, err := call[[]api.MeterVersion](ctx, c, get("/meters/"+url.PathEscape(id)+"/history", r.query()))
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// MeterKeys reads every key version of a meter.
func (c *Client) MeterKeys(ctx context.Context, id string, r Read) ([]meter.KeyVersion, error) {
	out, err := call[[]meter.KeyVersion](ctx, c, get("/meters/"+url.PathEscape(id)+"/keys", r.query()))
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// RotateKey replaces a meter's key.
func (c *Client) RotateKey(ctx context.Context, id string, req api.RotateRequest) (*api.MeterReceipt, error) {
	return call[api.MeterReceipt](ctx, c, post("/meters/"+url.PathEscape(id)+"/rotate", req))
}

// RevokeMeter revokes a meter's key.
func (c *Client) RevokeMeter(ctx context.Context, id string, req api.RevokeRequest) (*api.MeterReceipt, error) {
	return call[api.MeterReceipt](ctx, c, post("/meters/"+url.PathEscape(id)+"/revoke", req))
}

// Attest has the consortium attest the meter now and returns the
// attestation bundle, as package network/pkg/proof parses and verifies it;
// withChain false leaves the configuration chain out.
func (c *Client) Attest(ctx context.Context, id string, withChain bool) ([]byte, error) {
	var raw json.RawMessage
	err := c.do(ctx, request{method: http.MethodPost, path: api.Prefix + "/meters/" + url.PathEscape(id) + "/attestations",
		query: chainQuery(withChain, Read{}), write: true}, &raw)
	return raw, err
}

// LatestAttestation returns the meter's latest attestation bundle.
func (c *Client) LatestAttestation(ctx context.Context, id string, withChain bool, r Read) ([]byte, error) {
	var raw json.RawMessage
	err := c.do(ctx, get("/meters/"+url.PathEscape(id)+"/attestations/latest", chainQuery(withChain, r)), &raw)
	return raw, err
}

func chainQuery(withChain bool, r Read) url.Values {
	q := r.query()
	if !withChain {
		q.Set("chain", "false")
	}
	return q
}

// WithdrawPreEnrolment removes one of this NMI's pending pre-enrolments.
func (c *Client) WithdrawPreEnrolment(ctx context.Context, id string) (*api.PreEnrolmentReceipt, error) {
	return call[api.PreEnrolmentReceipt](ctx, c, request{method: http.MethodDelete, path: api.Prefix + "/pre-enrolments/" + url.PathEscape(id), write: true})
}

// Vote casts this NMI's vote for a consortium action (api.ActionRevoke of
// any meter, api.ActionRelease of a pre-enrolment); the tally says whether
// it made the majority and the action was taken.
func (c *Client) Vote(ctx context.Context, req api.VoteRequest) (*api.VoteReceipt, error) {
	return call[api.VoteReceipt](ctx, c, post("/consortium/votes", req))
}

// Votes lists the votes cast so far for an action on a meter ID.
func (c *Client) Votes(ctx context.Context, action, id string, r Read) (*api.VoteList, error) {
	return call[api.VoteList](ctx, c, get("/consortium/votes/"+url.PathEscape(action)+"/"+url.PathEscape(id), r.query()))
}

// ReinstateMeter lifts a certificateHold.
func (c *Client) ReinstateMeter(ctx context.Context, id string) (*api.MeterReceipt, error) {
	return call[api.MeterReceipt](ctx, c, request{method: http.MethodPost, path: api.Prefix + "/meters/" + url.PathEscape(id) + "/reinstate", write: true})
}

// SubmitMeasurement delivers one signed measurement.
func (c *Client) SubmitMeasurement(ctx context.Context, sm meter.SignedMeasurement) (*api.MeasurementReceipt, error) {
	return call[api.MeasurementReceipt](ctx, c, post("/meters/"+url.PathEscape(sm.MeterID)+"/measurements", sm))
}

// SubmitBatch delivers a concentrator batch.
func (c *Client) SubmitBatch(ctx context.Context, items []meter.SignedMeasurement) (*api.BatchReceipt, error) {
	return call[api.BatchReceipt](ctx, c, post("/measurements/batch", api.MeasurementBatch{Measurements: items}))
}

// Verify asks whether a signed measurement would be accepted now.
func (c *Client) Verify(ctx context.Context, sm meter.SignedMeasurement) (*meter.Verification, error) {
	req := post("/measurements/verify", sm)
	req.write = false
	return call[meter.Verification](ctx, c, req)
}

// MeasurementQuery selects a meter's measurements by meter time.
type MeasurementQuery struct {
	Read
	From, To, Cursor string
	Limit            int
}

// Measurements lists one page of a meter's accepted measurements.
func (c *Client) Measurements(ctx context.Context, id string, mq MeasurementQuery) (*api.MeasurementList, error) {
	q := mq.query()
	setIf(q, "from", mq.From)
	setIf(q, "to", mq.To)
	setIf(q, "cursor", mq.Cursor)
	if mq.Limit > 0 {
		q.Set("limit", strconv.Itoa(mq.Limit))
	}
	return call[api.MeasurementList](ctx, c, get("/meters/"+url.PathEscape(id)+"/measurements", q))
}

// Rejections lists one page of a meter's refused batch items.
func (c *Client) Rejections(ctx context.Context, id string, r Read, limit int, cursor string) (*api.RejectionList, error) {
	q := r.query()
	setIf(q, "cursor", cursor)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return call[api.RejectionList](ctx, c, get("/meters/"+url.PathEscape(id)+"/rejections", q))
}

// Findings lists one page of the integrity findings of the registry's index
// of the blocks (valid transactions it did not believe), oldest first.
func (c *Client) Findings(ctx context.Context, r Read, limit int, cursor string) (*api.FindingList, error) {
	q := r.query()
	setIf(q, "cursor", cursor)
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return call[api.FindingList](ctx, c, get("/findings", q))
}

// Consortium reads the consortium's members, orderers, height and chaincode.
func (c *Client) Consortium(ctx context.Context) (*api.Consortium, error) {
	return call[api.Consortium](ctx, c, get("/consortium", nil))
}

// BindBillingPeriod binds the customer's functional public key to a meter's
// billing period (customer).
func (c *Client) BindBillingPeriod(ctx context.Context, req api.BillingPeriodRequest) (*api.BillingReceipt, error) {
	return call[api.BillingReceipt](ctx, c, post("/billing/periods", req))
}

// AgreeTariff records the tariff customer and utility signed (either party).
func (c *Client) AgreeTariff(ctx context.Context, meterID, period string, req api.TariffAgreementRequest) (*api.BillingReceipt, error) {
	return call[api.BillingReceipt](ctx, c, post(billingPath(meterID, period)+"/tariff", req))
}

// RecordKeyIssued records that the customer issued the functional key
// (customer).
func (c *Client) RecordKeyIssued(ctx context.Context, meterID, period string, req api.KeyIssuedRequest) (*api.BillingReceipt, error) {
	return call[api.BillingReceipt](ctx, c, post(billingPath(meterID, period)+"/key", req))
}

// RecordBill records the utility's bill (utility).
func (c *Client) RecordBill(ctx context.Context, meterID, period string, req api.BillRequest) (*api.BillingReceipt, error) {
	return call[api.BillingReceipt](ctx, c, post(billingPath(meterID, period)+"/bill", req))
}

// BillingPeriod reads everything the ledger holds of a meter's billing period.
func (c *Client) BillingPeriod(ctx context.Context, meterID, period string, r Read) (*agreement.Record, error) {
	return call[agreement.Record](ctx, c, get(billingPath(meterID, period), r.query()))
}

func billingPath(meterID, period string) string {
	return "/billing/periods/" + url.PathEscape(meterID) + "/" + url.PathEscape(period)
}

// RecordMeterType records a meter type the registry's NMI examined, with
// the software versions approved for it (operator).
func (c *Client) RecordMeterType(ctx context.Context, req api.TypeRecordRequest) (*api.TypeReceipt, error) {
	return call[api.TypeReceipt](ctx, c, post("/types", req))
}

// ApproveSoftware approves another software version for a type the
// registry's NMI certified (operator).
func (c *Client) ApproveSoftware(ctx context.Context, typeID string, req api.ApproveRequest) (*api.TypeReceipt, error) {
	return call[api.TypeReceipt](ctx, c, post("/types/"+url.PathEscape(typeID)+"/versions", req))
}

// WithdrawSoftware withdraws a software version of a type the registry's
// NMI certified (operator).
func (c *Client) WithdrawSoftware(ctx context.Context, typeID string, req api.WithdrawRequest) (*api.TypeReceipt, error) {
	return call[api.TypeReceipt](ctx, c, post("/types/"+url.PathEscape(typeID)+"/withdraw", req))
}

// AssignMeterType names the type of a meter registered without one
// (operator).
func (c *Client) AssignMeterType(ctx context.Context, meterID, typeID string) (*api.MeterReceipt, error) {
	req := post("/meters/"+url.PathEscape(meterID)+"/type", api.AssignTypeRequest{TypeID: typeID})
	req.method = http.MethodPut
	return call[api.MeterReceipt](ctx, c, req)
}

// GetMeterType reads a meter type.
func (c *Client) GetMeterType(ctx context.Context, typeID string, r Read) (*meter.MeterType, error) {
	return call[meter.MeterType](ctx, c, get("/types/"+url.PathEscape(typeID), r.query()))
}

// MeterTypeHistory reads every version of a meter type's record.
func (c *Client) MeterTypeHistory(ctx context.Context, typeID string, r Read) ([]api.TypeVersion, error) {
	out, err := call[[]api.TypeVersion](ctx, c, get("/types/"+url.PathEscape(typeID)+"/history", r.query()))
	if err != nil {
		return nil, err
	}
	return *out, nil
}

// TypeListOptions filter and page ListMeterTypes and TypeMeters.
type TypeListOptions struct {
	Read
	// NMI, for ListMeterTypes, keeps the types that NMI (MSP ID) certified.
	NMI, Cursor string
	Limit       int
}

func (o TypeListOptions) values() url.Values {
	q := o.query()
	setIf(q, "nmi", o.NMI)
	setIf(q, "cursor", o.Cursor)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// ListMeterTypes lists one page of meter types.
func (c *Client) ListMeterTypes(ctx context.Context, o TypeListOptions) (*api.TypeList, error) {
	return call[api.TypeList](ctx, c, get("/types", o.values()))
}

// TypeMeters lists one page of the meters of a type.
func (c *Client) TypeMeters(ctx context.Context, typeID string, o TypeListOptions) (*api.MeterList, error) {
	o.NMI = ""
	return call[api.MeterList](ctx, c, get("/types/"+url.PathEscape(typeID)+"/meters", o.values()))
}

// SubmitSoftwareUpdate delivers a meter's signed update statement (ingest).
// A statement the ledger refused is an *api.Problem of its code whose TxID
// names the transaction that carries it as evidence.
func (c *Client) SubmitSoftwareUpdate(ctx context.Context, su meter.SignedUpdate) (*api.SoftwareUpdateReceipt, error) {
	return call[api.SoftwareUpdateReceipt](ctx, c, post("/meters/"+url.PathEscape(su.MeterID)+"/software-updates", su))
}

// MeterSoftware reads a meter's type, current software, the software its
// record remembers and its software log.
func (c *Client) MeterSoftware(ctx context.Context, meterID string, r Read) (*api.MeterSoftware, error) {
	return call[api.MeterSoftware](ctx, c, get("/meters/"+url.PathEscape(meterID)+"/software", r.query()))
}
