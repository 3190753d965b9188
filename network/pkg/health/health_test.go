package health

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// operations serves /healthz the way a Fabric operations endpoint does.
func operations(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func address(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "https://") }

func TestHealthz(t *testing.T) {
	ctx := context.Background()
	t.Run("healthy", func(t *testing.T) {
		srv := operations(t, http.StatusOK, `{"status":"OK","time":"2026-01-01T00:00:00Z"}`)
		if err := Healthz(ctx, srv.Client(), address(srv)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		srv := operations(t, http.StatusServiceUnavailable, `{"status":"Service Unavailable","time":"2026-01-01T00:00:00Z",`+
			`"failed_checks":[{"component":"docker","reason":"failed to ping docker"},{"component":"ledger","reason":"not open"}]}`)
		err := Healthz(ctx, srv.Client(), address(srv))
		var unhealthy *UnhealthyError
		if !errors.As(err, &unhealthy) {
			t.Fatalf("Healthz = %v, want an *UnhealthyError", err)
		}
		if len(unhealthy.FailedChecks) != 2 || unhealthy.FailedChecks[1] != (FailedCheck{Component: "ledger", Reason: "not open"}) {
			t.Fatalf("failed checks %+v", unhealthy.FailedChecks)
		}
		want := "503 Service Unavailable: docker: failed to ping docker; ledger: not open"
		if err.Error() != want {
			t.Fatalf("error %q, want %q", err, want)
		}
	})
	t.Run("unhealthy, not Fabric's JSON", func(t *testing.T) {
		srv := operations(t, http.StatusServiceUnavailable, "index unreadable\n")
		err := Healthz(ctx, srv.Client(), address(srv))
		if err == nil || err.Error() != "503 Service Unavailable: index unreadable" {
			t.Fatalf("Healthz = %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := operations(t, http.StatusOK, "")
		addr := address(srv)
		srv.Close()
		err := Healthz(ctx, srv.Client(), addr)
		var unhealthy *UnhealthyError
		if err == nil || errors.As(err, &unhealthy) {
			t.Fatalf("Healthz of a closed endpoint = %v", err)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Fatalf("Healthz of a closed endpoint = %v, want a network error", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := operations(t, http.StatusOK, "")
		if err := Healthz(ctx, &http.Client{Timeout: time.Second}, address(srv)); err == nil {
			t.Fatal("Healthz trusted a certificate outside the client's roots")
		}
	})
}

// The poller reads each node's TLS root from its file and reports what
// Healthz found.
func TestPoller(t *testing.T) {
	up := operations(t, http.StatusOK, `{"status":"OK"}`)
	down := operations(t, http.StatusServiceUnavailable, `{"status":"Service Unavailable","failed_checks":[{"component":"ledger","reason":"not open"}]}`)
	root := func(srv *httptest.Server) string {
		path := filepath.Join(t.TempDir(), "tlsca.pem")
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p, err := New([]Node{
		{Name: "peer0.ptb", Role: "peer", NMI: "PTB", Address: address(up), TLSRootCert: root(up)},
		{Name: "orderer0.cmi", Role: "orderer", NMI: "CMI", Address: address(down), TLSRootCert: root(down)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Nodes() {
		if st.Healthy || st.Detail != "not checked yet" {
			t.Fatalf("before the first poll: %+v", st)
		}
	}
	p.poll(context.Background())
	got := p.Nodes()
	if !got[0].Healthy || got[0].Detail != "" || got[0].Checked.IsZero() {
		t.Fatalf("healthy node: %+v", got[0])
	}
	if got[1].Healthy || got[1].Detail != "503 Service Unavailable: ledger: not open" || got[1].Role != "orderer" {
		t.Fatalf("unhealthy node: %+v", got[1])
	}
	if _, err := New([]Node{{Name: "x", TLSRootCert: filepath.Join(t.TempDir(), "missing.pem")}}); err == nil {
		t.Fatal("New accepted a node without its TLS root")
	}
}
