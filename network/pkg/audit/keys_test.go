package audit

import (
	"fmt"
	"testing"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
)

// The key cache stays bounded however many meters pass, and keeps a key in
// use across generations.
func TestKeyCacheBounded(t *testing.T) {
	c := newKeys(100)
	hot := &meter.PublicKey{}
	c.put("hot", hot)
	for i := range 1000 {
		c.put(fmt.Sprint(i), &meter.PublicKey{})
		if k, ok := c.get("hot"); !ok || k != hot {
			t.Fatalf("the key in use was dropped after %d others", i)
		}
		if n := c.len(); n > 200 {
			t.Fatalf("%d keys kept, bound 2×100", n)
		}
	}
	if _, ok := c.get("0"); ok {
		t.Error("a key unused for 999 others is still kept")
	}
}
