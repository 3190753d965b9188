package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bundles the verifier's own tests use: made on a real consortium.
const proofData = "../../../testdata/attestations"

func proofFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(proofData, name)
}

func pinnedHash(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(proofFile(t, "genesis.hash"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestVerifyProof(t *testing.T) {
	// The bundles were made on 2026-12-07; verify them as of the next day.
	defer func(old time.Time) { now = old }(now)
	now = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	hash := pinnedHash(t)
	meterID, err := os.ReadFile(proofFile(t, "meter.id"))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(meterID))

	r := pki(t, "", nil, "verify-proof", proofFile(t, "revoked.json"), "--genesis-hash", hash, "--max-age", "48h", "--meter", id)
	r.want(t, exitOK)
	for _, want := range []string{"As of block ", "meter " + id + " is bound to key fingerprint ", "key version 2", "status revoked (revoked: keyCompromise", "owned by NMI PTBMSP; attested by NMIs ", "ordered by 3 of 4 consenters."} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("statement %q lacks %q", r.stdout, want)
		}
	}

	// A bundle without its chain, verified with an earlier one's; JSON out.
	r = pki(t, "", nil, "verify-proof", proofFile(t, "fresh-nochain.json"), "--chain", proofFile(t, "fresh.json"), "--genesis-hash", hash, "-o", "json")
	r.want(t, exitOK)
	var st struct {
		MeterID    string   `json:"meterId"`
		Status     string   `json:"status"`
		KeyVersion int      `json:"keyVersion"`
		AttestedBy []string `json:"attestedBy"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.MeterID != id || st.Status != "active" || st.KeyVersion != 1 || len(st.AttestedBy) < 2 {
		t.Errorf("statement %+v", st)
	}

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"too old", []string{proofFile(t, "fresh.json"), "--genesis-hash", hash, "--max-age", "1h"}, "more than 1h0m0s before 2026-12-08T09:00:00Z"},
		{"another meter", []string{proofFile(t, "fresh.json"), "--genesis-hash", hash, "--meter", "PTB-0002"}, "not PTB-0002"},
		{"wrong genesis hash", []string{proofFile(t, "fresh.json"), "--genesis-hash", strings.Repeat("00", 32)}, "genesis block is not the channel's"},
		{"no chain", []string{proofFile(t, "fresh-nochain.json"), "--genesis-hash", hash}, "carries no configuration chain"},
		{"not a bundle", []string{proofFile(t, "genesis.hash"), "--genesis-hash", hash}, "not an attestation bundle"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			r := pki(t, "", nil, append([]string{"verify-proof"}, tt.args...)...)
			r.want(t, exitFailure)
			if !strings.Contains(r.stderr, "attestation refused: ") || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("stdout %q, stderr %q; want a refusal saying %q", r.stdout, r.stderr, tt.want)
			}
		})
	}
	r = pki(t, "", nil, "verify-proof", proofFile(t, "fresh.json"), "--genesis-hash", hash, "--max-age", "1h", "-o", "json")
	r.want(t, exitFailure)
	var refusal struct {
		Verified bool
		Kind     string
	}
	if err := json.Unmarshal([]byte(r.stdout), &refusal); err != nil || refusal.Verified || refusal.Kind != "age" {
		t.Errorf("-o json refusal: %s (%v)", r.stdout, err)
	}

	usage := [][]string{
		{"verify-proof", proofFile(t, "fresh.json")},
		{"verify-proof", proofFile(t, "fresh.json"), "--genesis-hash", "abc"},
		{"verify-proof", proofFile(t, "fresh.json"), "--genesis-hash", hash, "--genesis-block", proofFile(t, "fresh.json")},
		{"verify-proof", proofFile(t, "fresh.json"), "--genesis-hash", hash, "--max-age", "-1h"},
		{"verify-proof", "--genesis-hash", hash},
	}
	for _, args := range usage {
		pki(t, "", nil, args...).want(t, exitUsage)
	}
}

// pki attest makes one attestation (POST, no retry) or reads the latest
// (GET), with or without the chain, and writes the registry's bundle as is;
// then pki verify-proof checks it.
func TestAttest(t *testing.T) {
	defer func(old time.Time) { now = old }(now)
	now = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	bundle, err := os.ReadFile(proofFile(t, "fresh.json"))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(bundle)
	}
	reg, srv := fakeRegistry(t, false, map[string]http.HandlerFunc{
		"POST /api/v1/meters/{id}/attestations":       serve,
		"GET /api/v1/meters/{id}/attestations/latest": serve,
	})
	out := filepath.Join(t.TempDir(), "a.json")
	r := pki(t, "", envFor(t, srv), "attest", "PTB-0001", "--out", out)
	r.want(t, exitOK)
	pki(t, "", nil, "verify-proof", out, "--genesis-hash", pinnedHash(t), "--max-age", "24h").want(t, exitOK)
	pki(t, "", envFor(t, srv), "attest", "PTB-0001", "--latest", "--no-chain").want(t, exitOK)
	pki(t, "", envFor(t, srv), "attest", "PTB 0001").want(t, exitUsage)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.requests) != 2 || reg.requests[0].method != http.MethodPost || reg.requests[0].path != "/api/v1/meters/PTB-0001/attestations" ||
		reg.requests[1].method != http.MethodGet || !strings.Contains(reg.requests[1].query, "chain=false") {
		t.Errorf("requests: %+v", reg.requests)
	}
}
