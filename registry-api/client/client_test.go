package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/client"
)

// TestMeterIDEscapedOnce: a meter ID travels in the path escaped exactly
// once, so the registry reads back the ID it was given, valid or not.
func TestMeterIDEscapedOnce(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Options{BaseURL: srv.URL + "/registry", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"PTB:0001": "/registry/api/v1/meters/PTB:0001",
		"a b":      "/registry/api/v1/meters/a%20b",
		"a/b":      "/registry/api/v1/meters/a%2Fb",
	} {
		if _, err := c.GetMeter(context.Background(), id, client.Read{}); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("meter %q requested as %s, want %s", id, got, want)
		}
	}
}

// A write answered OUTCOME_UNKNOWN, or refused while its first attempt is
// still in flight, is sent again with the same Idempotency-Key.
func TestWriteRetriedWithItsKey(t *testing.T) {
	var keys []string
	answers := []struct {
		status int
		body   string
	}{
		{http.StatusGatewayTimeout, `{"code":"OUTCOME_UNKNOWN","txId":"ab"}`},
		{http.StatusConflict, `{"code":"IDEMPOTENCY_CONFLICT"}`},
		{http.StatusOK, `{"meterId":"PTB-1","seq":1,"txId":"ab","block":9,"duplicate":true}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		a := answers[len(keys)-1]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	c, err := client.New(client.Options{BaseURL: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.SubmitMeasurement(context.Background(), meter.SignedMeasurement{MeterID: "PTB-1", Payload: []byte("{}"), Signature: []byte{1}})
	if err != nil || !r.Duplicate || r.TxID != "ab" {
		t.Fatalf("SubmitMeasurement = %+v, %v", r, err)
	}
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("Idempotency-Keys sent: %q", keys)
	}
}
