package meter

import (
	"fmt"
	"strings"
)

// ParseCurve reads a curve name as people and tools write it: the names of
// Curves, in any case and with or without the hyphen, and the aliases
// openssl knows them by (prime256v1, secp256r1, secp384r1).
func ParseCurve(s string) (Curve, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "-", "")) {
	case "p256", "prime256v1", "secp256r1":
		return P256, nil
	case "p384", "secp384r1":
		return P384, nil
	case "secp256k1":
		return Secp256k1, nil
	}
	return "", fmt.Errorf("curve %q is not accepted: use P-256, P-384 or secp256k1", s)
}
