package server

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"
)

// openAPIDoc is the API's description. TestOpenAPIMatchesRoutes keeps it
// and the routes in step.
//
//go:embed openapi.yaml
var openAPIDoc []byte

// openAPIAsJSON is the same document as JSON, converted on first use.
var openAPIAsJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIDoc, &doc); err != nil {
		return nil, fmt.Errorf("embedded openapi.yaml: %w", err)
	}
	return json.Marshal(doc)
})

func (s *Server) openAPIYAML(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", openAPIDoc)
}

func (s *Server) openAPIJSON(c *gin.Context) {
	b, err := openAPIAsJSON()
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", b)
}
