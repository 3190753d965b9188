package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

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
