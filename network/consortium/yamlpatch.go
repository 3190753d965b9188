package consortium

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlDoc is a Fabric sample configuration (core.yaml, orderer.yaml) being
// adapted to one node. Editing the parsed document keeps every default and
// comment of the release the binaries came from; only what the topology
// decides is changed.
type yamlDoc struct{ root *yaml.Node }

func loadYAML(path string) (*yamlDoc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: not a single YAML document", path)
	}
	return &yamlDoc{root: doc.Content[0]}, nil
}

// set replaces the value at a dotted path ("peer.gossip.bootstrap"),
// creating missing mappings on the way.
func (d *yamlDoc) set(path string, value any) error {
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	node := d.root
	parts := strings.Split(path, ".")
	for i, key := range parts {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: %s is not a mapping", path, strings.Join(parts[:i], "."))
		}
		var next *yaml.Node
		for j := 0; j+1 < len(node.Content); j += 2 {
			if node.Content[j].Value == key {
				next = node.Content[j+1]
				if i == len(parts)-1 {
					node.Content[j+1] = &v
				}
				break
			}
		}
		if i == len(parts)-1 {
			if next == nil {
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &v)
			}
			return nil
		}
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, next)
		}
		node = next
	}
	return nil
}

// setAll applies settings in a stable order and reports the first failure.
func (d *yamlDoc) setAll(settings []setting) error {
	for _, s := range settings {
		if err := d.set(s.path, s.value); err != nil {
			return err
		}
	}
	return nil
}

type setting struct {
	path  string
	value any
}

func (d *yamlDoc) write(path string) error {
	b, err := yaml.Marshal(d.root)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
