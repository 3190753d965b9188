package configfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inter-nmi/pki/network/pkg/configfile"
)

type server struct {
	Listen string `yaml:"listen"`
	TLS    struct {
		Cert string `yaml:"cert"`
	} `yaml:"tls"`
	Peers []string `yaml:"peers,omitempty"`
}

// checked is a configuration that validates itself.
type checked struct {
	Listen string `yaml:"listen"`
	Data   string `yaml:"data"`
}

func (c *checked) Validate() error {
	return errors.Join(configfile.Required(map[string]string{"listen": c.Listen, "data": c.Data})...)
}

func write(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadGoodFile(t *testing.T) {
	path := write(t, "listen: 127.0.0.1:8081\ntls:\n  cert: cert.pem\npeers: [a, b]\n")
	c, err := configfile.Load[server](path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8081" || c.TLS.Cert != "cert.pem" || len(c.Peers) != 2 {
		t.Errorf("loaded %+v", c)
	}
}

// A setting the configuration has no field for is refused, naming the
// file and the setting, not silently ignored.
func TestLoadUnknownField(t *testing.T) {
	path := write(t, "listen: 127.0.0.1:8081\ntls:\n  cert: cert.pem\n  keyy: key.pem\n")
	_, err := configfile.Load[server](path)
	if err == nil || !strings.Contains(err.Error(), "configuration "+path+": ") || !strings.Contains(err.Error(), "keyy") {
		t.Fatalf("unknown field: %v, want an error naming the file and the field", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := configfile.Load[server](path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read configuration: ") || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLoadBadYAML(t *testing.T) {
	for name, text := range map[string]string{
		"syntax":     "listen: [127.0.0.1\n",
		"wrong type": "peers: {a: b}\n",
		"empty":      "",
	} {
		path := write(t, text)
		if _, err := configfile.Load[server](path); err == nil || !strings.HasPrefix(err.Error(), "configuration "+path+": ") {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}

// A configuration with a Validate method is validated once read.
func TestLoadValidates(t *testing.T) {
	if _, err := configfile.Load[checked](write(t, "listen: :8081\ndata: x.db\n")); err != nil {
		t.Fatal(err)
	}
	path := write(t, "listen: :8081\n")
	_, err := configfile.Load[checked](path)
	if want := "configuration " + path + ": data is required"; err == nil || err.Error() != want {
		t.Fatalf("invalid configuration: %v, want %q", err, want)
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "saved.yaml")
	var in server
	in.Listen, in.TLS.Cert = "0.0.0.0:443", "tls/cert.pem"
	if err := configfile.Save(path, &in, 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("saved file %v %v, want mode 0640", fi, err)
	}
	out, err := configfile.Load[server](path)
	if err != nil {
		t.Fatal(err)
	}
	if out.Listen != in.Listen || out.TLS.Cert != in.TLS.Cert || out.Peers != nil {
		t.Errorf("round trip: %+v, want %+v", out, in)
	}
}

func TestRequired(t *testing.T) {
	errs := configfile.Required(map[string]string{"tls.key": "", "channel": "metrology", "data": "", "nmi": ""})
	var got []string
	for _, err := range errs {
		got = append(got, err.Error())
	}
	if want := "data is required|nmi is required|tls.key is required"; strings.Join(got, "|") != want {
		t.Errorf("Required = %q, want %q", got, want)
	}
	if errs := configfile.Required(map[string]string{"channel": "metrology"}); len(errs) != 0 {
		t.Errorf("Required with every value set = %v", errs)
	}
}
