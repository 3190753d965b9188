package consortium

import "testing"

func TestToolError(t *testing.T) {
	usage := "\x1b[33m2026-12-01 WARN\x1b[0m keepalive\nError: failed to endorse proposal: connection refused\nUsage:\n  peer lifecycle chaincode approveformyorg [flags]\n\nFlags:\n  -o, --orderer string\n  --tls\n  --cafile string\n"
	if got := toolError(usage); got != "Error: failed to endorse proposal: connection refused" {
		t.Fatalf("toolError(usage) = %q", got)
	}
	if got := toolError("a\nb\nc"); got != "a\nb\nc" {
		t.Fatalf("toolError without Error: = %q", got)
	}
}
