package credentials

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var tokenRE = regexp.MustCompile(`^nmipki_[A-Za-z0-9_-]{43}$`)

func TestNewToken(t *testing.T) {
	token, cred, err := NewToken("ptb-operator", RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if !tokenRE.MatchString(token) {
		t.Errorf("token %q is not nmipki_ and 32 bytes of base64url", token)
	}
	if cred.ID != "ptb-operator" || cred.Role != RoleOperator || cred.SHA256 != Hash(token) || strings.Contains(cred.SHA256, token) {
		t.Errorf("credential = %+v", cred)
	}
	if _, err := time.Parse(time.RFC3339, cred.Created); err != nil {
		t.Errorf("created %q: %v", cred.Created, err)
	}
	other, _, err := NewToken("ptb-operator", RoleOperator)
	if err != nil || other == token {
		t.Errorf("a second token %q (%v) equals the first", other, err)
	}
}

func TestHash(t *testing.T) {
	// printf nmipki_x | sha256sum
	if got, want := Hash("nmipki_x"), "7263a4da0a8ff05eee87382b1ad41d173b4a81ab0e391f49cf72e55fac176d11"; got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
}

func TestAuthenticate(t *testing.T) {
	var creds []Credential
	tokens := map[Role]string{}
	for _, role := range Roles {
		token, cred, err := NewToken("ptb-"+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = token
		creds = append(creds, cred)
	}
	s, err := New(creds)
	if err != nil {
		t.Fatal(err)
	}
	for role, token := range tokens {
		p, err := s.Authenticate(token)
		if err != nil || p != (Principal{ID: "ptb-" + string(role), Role: role}) {
			t.Errorf("Authenticate(%s token) = %+v, %v", role, p, err)
		}
	}
	unknown, _, err := NewToken("elsewhere", RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, token string
		unknown     bool
	}{
		{"unknown token", unknown, true},
		{"token changed", tokens[RoleAuditor][:len(tokens[RoleAuditor])-1] + "x", true},
		{"prefix alone", TokenPrefix, true},
		{"no prefix", strings.TrimPrefix(tokens[RoleAuditor], TokenPrefix), false},
		{"the stored hash", creds[0].SHA256, false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := s.Authenticate(c.token)
			if err == nil {
				t.Fatalf("Authenticate accepted it as %+v", p)
			}
			if errors.Is(err, ErrUnknownToken) != c.unknown {
				t.Errorf("error %v: ErrUnknownToken = %v, want %v", err, !c.unknown, c.unknown)
			}
			if p != (Principal{}) {
				t.Errorf("principal %+v with an error", p)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	good := Hash("nmipki_x")
	cases := []struct {
		name string
		cred Credential
	}{
		{"unknown role", Credential{ID: "a", Role: "admin", SHA256: good}},
		{"no role", Credential{ID: "a", SHA256: good}},
		{"role in capitals", Credential{ID: "a", Role: "Operator", SHA256: good}},
		{"uppercase hash", Credential{ID: "a", Role: RoleAuditor, SHA256: strings.ToUpper(good)}},
		{"short hash", Credential{ID: "a", Role: RoleAuditor, SHA256: good[:63]}},
		{"hash not hex", Credential{ID: "a", Role: RoleAuditor, SHA256: strings.Repeat("g", 64)}},
		{"a token for a hash", Credential{ID: "a", Role: RoleAuditor, SHA256: "nmipki_x"}},
		{"no hash", Credential{ID: "a", Role: RoleAuditor}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok := Credential{ID: "ok", Role: RoleOperator, SHA256: Hash("nmipki_ok")}
			if _, err := New([]Credential{ok, c.cred}); err == nil || !strings.Contains(err.Error(), `"a"`) {
				t.Errorf("New accepted %+v (err %v); want an error naming the credential", c.cred, err)
			}
		})
	}
	if _, err := New([]Credential{{ID: "a", Role: RoleIngest, SHA256: good}}); err != nil {
		t.Errorf("New refused a good credential: %v", err)
	}
}

func TestProvision(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "etc", "credentials.json")
	tokenDir := filepath.Join(dir, "tokens")
	if err := Provision("PTB", credFile, tokenDir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tokenDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("token directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	raw, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Credentials) != len(Roles) {
		t.Fatalf("credentials = %+v, want one per role", f.Credentials)
	}
	store, err := Load(credFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[Role]string{}
	for i, role := range Roles {
		path := filepath.Join(tokenDir, string(role)+".token")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		token := strings.TrimSuffix(string(b), "\n")
		if !tokenRE.MatchString(token) || !strings.HasSuffix(string(b), "\n") {
			t.Errorf("%s holds %q, want one token and a newline", path, b)
		}
		tokens[role] = token
		if strings.Contains(string(raw), token) || strings.Contains(string(raw), strings.TrimPrefix(token, TokenPrefix)) {
			t.Errorf("the credentials file holds the %s token itself", role)
		}
		if c := f.Credentials[i]; c.ID != "ptb-"+string(role) || c.Role != role || c.SHA256 != Hash(token) {
			t.Errorf("credential %+v does not describe the %s token", c, role)
		}
		if p, err := store.Authenticate(token); err != nil || p.Role != role || p.ID != "ptb-"+string(role) {
			t.Errorf("the provisioned %s token authenticates as %+v, %v", role, p, err)
		}
	}

	// A second run keeps the existing credentials and tokens.
	if err := Provision("PTB", credFile, tokenDir); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(credFile)
	if err != nil || string(again) != string(raw) {
		t.Errorf("a second Provision rewrote the credentials file (%v)", err)
	}
	for role, token := range tokens {
		b, err := os.ReadFile(filepath.Join(tokenDir, string(role)+".token"))
		if err != nil || string(b) != token+"\n" {
			t.Errorf("a second Provision replaced the %s token (%v)", role, err)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	for _, content := range []string{`{"credentials":`, `{"credentials":[{"id":"a","role":"root","sha256":"` + Hash("nmipki_x") + `"}]}`} {
		if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(bad); err == nil {
			t.Errorf("Load accepted %s", content)
		}
	}
}
