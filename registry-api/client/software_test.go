package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/client"
)

// TestSoftwareCalls sends each call of types and software to its route:
// writes with their body and an Idempotency-Key, reads with their query
// and neither.
func TestSoftwareCalls(t *testing.T) {
	ctx := context.Background()
	sw := meter.Software{ID: "fw-1.3", Checksum: "sha256:2c26b46b68ffc68f"}
	record := api.TypeRecordRequest{TypeID: "PTB-E350", Manufacturer: "Acme", Model: "E350", Certificate: "DE-MI003",
		Versions: []meter.VersionApproval{{Software: sw}}}
	update := meter.SignedUpdate{MeterID: "PTB:1", Statement: []byte(`{"type":"softwareUpdate"}`), Signature: []byte{0x30, 1}}
	cases := []struct {
		name, method, path, query string
		body                      any // nil for a read
		call                      func(*client.Client) error
	}{
		{"record", http.MethodPost, "/api/v1/types", "", record,
			func(c *client.Client) error { _, err := c.RecordMeterType(ctx, record); return err }},
		{"approve", http.MethodPost, "/api/v1/types/PTB-E350/versions", "", api.ApproveRequest{Software: sw, ApprovedFrom: "2026-12-01T00:00:00Z"},
			func(c *client.Client) error {
				_, err := c.ApproveSoftware(ctx, "PTB-E350", api.ApproveRequest{Software: sw, ApprovedFrom: "2026-12-01T00:00:00Z"})
				return err
			}},
		{"withdraw", http.MethodPost, "/api/v1/types/PTB:E350/withdraw", "", api.WithdrawRequest{SoftwareID: "fw/1.2", Reason: "fault"},
			func(c *client.Client) error {
				_, err := c.WithdrawSoftware(ctx, "PTB:E350", api.WithdrawRequest{SoftwareID: "fw/1.2", Reason: "fault"})
				return err
			}},
		{"assign", http.MethodPut, "/api/v1/meters/PTB-0001/type", "", api.AssignTypeRequest{TypeID: "PTB-E350"},
			func(c *client.Client) error { _, err := c.AssignMeterType(ctx, "PTB-0001", "PTB-E350"); return err }},
		{"update", http.MethodPost, "/api/v1/meters/PTB:1/software-updates", "", update,
			func(c *client.Client) error { _, err := c.SubmitSoftwareUpdate(ctx, update); return err }},
		{"type", http.MethodGet, "/api/v1/types/a%20b", "minBlock=3", nil,
			func(c *client.Client) error {
				_, err := c.GetMeterType(ctx, "a b", client.Read{MinBlock: 3})
				return err
			}},
		{"history", http.MethodGet, "/api/v1/types/PTB-E350/history", "", nil,
			func(c *client.Client) error { _, err := c.MeterTypeHistory(ctx, "PTB-E350", client.Read{}); return err }},
		{"list", http.MethodGet, "/api/v1/types", "cursor=c1&limit=5&nmi=PTBMSP", nil,
			func(c *client.Client) error {
				_, err := c.ListMeterTypes(ctx, client.TypeListOptions{NMI: "PTBMSP", Cursor: "c1", Limit: 5})
				return err
			}},
		{"meters", http.MethodGet, "/api/v1/types/PTB-E350/meters", "limit=2&minBlock=9", nil,
			func(c *client.Client) error {
				_, err := c.TypeMeters(ctx, "PTB-E350", client.TypeListOptions{Read: client.Read{MinBlock: 9}, NMI: "ignored", Limit: 2})
				return err
			}},
		{"software", http.MethodGet, "/api/v1/meters/PTB-0001/software", "", nil,
			func(c *client.Client) error { _, err := c.MeterSoftware(ctx, "PTB-0001", client.Read{}); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRegistry{statuses: []int{http.StatusOK}, answer: map[string]any{}}
			if tc.name == "history" {
				f.answer = []any{}
			}
			if err := tc.call(newClient(t, f)); err != nil {
				t.Fatal(err)
			}
			if len(f.got) != 1 {
				t.Fatalf("%d requests", len(f.got))
			}
			e := f.got[0]
			if e.method != tc.method || e.path != tc.path || e.query != tc.query {
				t.Errorf("sent %s %s?%s, want %s %s?%s", e.method, e.path, e.query, tc.method, tc.path, tc.query)
			}
			if tc.body == nil {
				if e.key != "" || len(e.body) != 0 {
					t.Errorf("a read sent Idempotency-Key %q and body %q", e.key, e.body)
				}
				return
			}
			if b, _ := json.Marshal(tc.body); e.key == "" || string(e.body) != string(b) {
				t.Errorf("sent body %s with Idempotency-Key %q, want %s with a key", e.body, e.key, b)
			}
		})
	}
}

// A refused update statement is the problem of its code, naming the
// transaction that carries it.
func TestSoftwareUpdateRefused(t *testing.T) {
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(api.Problem{Type: api.ProblemType("SOFTWARE_NOT_APPROVED"), Status: 422,
			Code: "SOFTWARE_NOT_APPROVED", Detail: "fw-9 is not a version of type PTB-E350", TxID: "tx-evidence"})
	})
	_, err := newClient(t, srv).SubmitSoftwareUpdate(context.Background(), meter.SignedUpdate{MeterID: "PTB-0001"})
	var p *api.Problem
	if !errors.As(err, &p) || p.Code != string(meter.CodeSoftwareNotApproved) || p.TxID != "tx-evidence" {
		t.Fatalf("error %v, want SOFTWARE_NOT_APPROVED naming tx-evidence", err)
	}
}
