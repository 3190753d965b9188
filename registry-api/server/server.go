// Package server is the registry's HTTP interface: the versioned JSON API
// NMI operators, data concentrators, auditors and the parties of billing
// use, in front of the NMI's own peer.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inter-nmi/pki/network/pkg/credentials"
	"github.com/inter-nmi/pki/network/pkg/proof"
	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/idempotency"
	"github.com/inter-nmi/pki/registry-api/ledger"
	"github.com/inter-nmi/pki/registry-api/readings"
)

// Ledger is what the server needs of the chain (package ledger implements
// it on a Fabric gateway; tests fake it).
type Ledger interface {
	SubmitAll(ctx context.Context, as api.Role, tx string, argsList [][]string, record ledger.Recorder) ([]*ledger.Receipt, error)
	Settle(ctx context.Context, tx string, p ledger.Pending) (*ledger.Receipt, error)
	Status(ctx context.Context, txID string, wait time.Duration) (*ledger.TxStatus, error)
	Evaluate(ctx context.Context, as api.Role, tx string, args ...string) ([]byte, error)
	AwaitBlock(ctx context.Context, block uint64) error
	Block(ctx context.Context, number uint64) (*common.Block, error)
	Consortium(ctx context.Context) (*api.Consortium, error)
	Ready(ctx context.Context) error
	Height(ctx context.Context) (uint64, error)
}

// Options configure a Server.
type Options struct {
	// NMI is the MSP ID the registry speaks for: a registration must carry
	// the meter's proof of possession made for it.
	NMI string
	// Channel is the channel's name, which attestation bundles carry.
	Channel     string
	Ledger      Ledger
	Credentials *credentials.Store
	Idempotency *idempotency.Store
	Log         *slog.Logger
	// Metrics registers the server's metrics; the operations handler's
	// /metrics serves Gatherer.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Timeouts of a request's work (the ledger included).
	ReadTimeout, WriteTimeout, BatchTimeout time.Duration
	// Readings is the index of the NMI's peer's blocks the registry answers
	// measurement and rejection queries from.
	Readings *readings.Index
	// GroupSlots is how many transactions of grouped single deliveries may
	// be in flight at once (default 2); deliveries that arrive while all are
	// busy share the next one. Few slots make large groups under load: a
	// block costs the consortium about 100 ms of CPU whatever it holds, and
	// each group is about one block.
	GroupSlots int
	// IndexWait bounds how long an answer from the index waits for it to
	// read the blocks it needs: those of this registry's own last commits,
	// or every block the peer holds before a refusal as a replay is
	// answered (default 2s).
	IndexWait time.Duration
	// GroupWindow is how long a group gathers at least before it is sent
	// (default 5 ms).
	GroupWindow time.Duration
}

// Body size limits.
const (
	maxBody             = 1 << 20
	maxRegistrationBody = 32 << 20
	maxMeasurementBody  = 24 << 20
)

// Server serves the API.
type Server struct {
	opts    Options
	log     *slog.Logger
	engine  *gin.Engine
	metrics *httpMetrics
	batcher *batcher
	stop    context.CancelFunc
	attest  attestations
	// committed is the highest block in which a transaction this registry
	// sent was committed: its index must have read that far before it
	// answers a re-delivery from what it holds.
	committed atomic.Uint64
	// locks keep each meter's readings in one transaction in flight at a
	// time.
	locks meterLocks
}

// New builds the server and its routes. opts.NMI is required.
func New(opts Options) *Server {
	if opts.NMI == "" {
		panic("server: Options.NMI (the MSP ID the registry speaks for) is required")
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 90 * time.Second
	}
	if opts.BatchTimeout == 0 {
		opts.BatchTimeout = 10 * time.Minute
	}
	if opts.IndexWait == 0 {
		opts.IndexWait = 2 * time.Second
	}
	if opts.GroupSlots == 0 {
		opts.GroupSlots = 2
	}
	if opts.GroupWindow == 0 {
		opts.GroupWindow = 5 * time.Millisecond
	}
	s := &Server{opts: opts, log: opts.Log, engine: gin.New(), metrics: newHTTPMetrics(opts.Metrics)}
	s.engine.HandleMethodNotAllowed = true
	s.engine.ContextWithFallback = true
	s.engine.Use(s.requestID, s.observe, s.recover)
	s.engine.NoRoute(func(c *gin.Context) {
		fail(c, problem(api.CodeNotFound, "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path+"; see "+api.Prefix+"/openapi.json"))
	})
	s.engine.NoMethod(func(c *gin.Context) {
		fail(c, problem(api.CodeMethodNotAllowed, c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	})
	s.attest.assembler = proof.NewAssembler(opts.Channel, opts.Ledger.Block)
	s.routes()
	var ctx context.Context
	ctx, s.stop = context.WithCancel(context.Background())
	s.batcher = newBatcher(s, opts.GroupSlots, opts.GroupWindow)
	go s.batcher.run(ctx)
	return s
}

// Close stops grouping single deliveries; groups already sent finish.
func (s *Server) Close() { s.stop() }

// Handler is the server's http.Handler: the API, for its clients.
func (s *Server) Handler() http.Handler { return s.engine }

// OperationsHandler serves /metrics, /healthz and /readyz for the NMI's
// monitoring, on an operations address apart from the API: the metrics
// tell who calls what how often (routes, statuses, credential counts,
// transaction rates), which is the NMI's business, not its API clients'.
// /metrics answers only a client whose certificate the TLS configuration
// verified (its ClientCAs, the NMI's TLS client CA), as on the NMI's peer
// and orderer; /healthz and /readyz stay open.
func (s *Server) OperationsHandler() http.Handler {
	ops := gin.New()
	ops.HandleMethodNotAllowed = true
	ops.Use(s.recover)
	ops.GET("/healthz", s.healthz)
	ops.GET("/readyz", s.readyz)
	metrics := gin.WrapH(promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	ops.GET("/metrics", func(c *gin.Context) {
		if c.Request.TLS == nil || len(c.Request.TLS.VerifiedChains) == 0 {
			fail(c, problem(api.CodeUnauthenticated, "/metrics needs a client certificate from the NMI's TLS client CA"))
			return
		}
		c.Next()
	}, metrics)
	return ops
}

// Routes lists method and path of every route, for the OpenAPI check.
func (s *Server) Routes() []gin.RouteInfo { return s.engine.Routes() }

func (s *Server) routes() {
	e := s.engine
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET(api.Prefix+"/openapi.json", s.openAPIJSON)
	e.GET(api.Prefix+"/openapi.yaml", s.openAPIYAML)

	v1 := e.Group(api.Prefix, s.authenticate)
	operator, ingest, anyone := allow(api.RoleOperator), allow(api.RoleIngest), allow(api.Roles...)
	read, write, batch := s.deadline(s.opts.ReadTimeout), s.deadline(s.opts.WriteTimeout), s.deadline(s.opts.BatchTimeout)
	small := limit(maxBody)

	v1.POST("/meters", operator, small, write, s.idempotent, s.registerMeter)
	v1.POST("/meters/batch", operator, limit(maxRegistrationBody), batch, s.idempotent, s.registerMeters)
	v1.GET("/meters", anyone, read, s.listMeters)
	v1.GET("/meters/:id", anyone, read, s.getMeter)
	v1.GET("/meters/:id/history", anyone, read, s.meterHistory)
	v1.GET("/meters/:id/keys", anyone, read, s.meterKeys)
	v1.POST("/meters/:id/attestations", anyone, small, write, s.idempotent, s.attestMeter)
	v1.GET("/meters/:id/attestations/latest", anyone, read, s.latestAttestation)
	v1.POST("/meters/:id/rotate", operator, small, write, s.idempotent, s.rotateKey)
	v1.POST("/meters/:id/revoke", operator, small, write, s.idempotent, s.revokeMeter)
	v1.POST("/meters/:id/reinstate", operator, small, write, s.idempotent, s.reinstateMeter)
	v1.POST("/pre-enrolments", operator, small, write, s.idempotent, s.preEnrol)
	v1.GET("/pre-enrolments/:id", anyone, read, s.getPreEnrolment)
	v1.DELETE("/pre-enrolments/:id", operator, write, s.idempotent, s.withdrawPreEnrolment)

	v1.PUT("/meters/:id/type", operator, small, write, s.idempotent, s.assignType)
	v1.GET("/meters/:id/software", anyone, read, s.meterSoftware)
	v1.POST("/meters/:id/software-updates", ingest, small, write, s.idempotent, s.submitSoftwareUpdate)
	v1.POST("/types", operator, small, write, s.idempotent, s.recordType)
	v1.GET("/types", anyone, read, s.listTypes)
	v1.GET("/types/:id", anyone, read, s.getType)
	v1.GET("/types/:id/history", anyone, read, s.typeHistory)
	v1.GET("/types/:id/meters", anyone, read, s.typeMeters)
	v1.POST("/types/:id/versions", operator, small, write, s.idempotent, s.approveSoftware)
	v1.POST("/types/:id/withdraw", operator, small, write, s.idempotent, s.withdrawSoftware)

	v1.POST("/meters/:id/measurements", ingest, limit(2*maxBody), write, s.idempotent, s.submitMeasurement)
	v1.GET("/meters/:id/measurements", anyone, read, s.listMeasurements)
	v1.GET("/meters/:id/rejections", anyone, read, s.listRejections)
	v1.POST("/measurements/batch", ingest, limit(maxMeasurementBody), write, s.idempotent, s.submitBatch)
	v1.POST("/measurements/verify", anyone, limit(2*maxBody), read, s.verifyMeasurement)

	customer, utility := allow(api.RoleCustomer), allow(api.RoleUtility)
	v1.POST("/billing/periods", customer, small, write, s.idempotent, s.bindPeriod)
	v1.GET("/billing/periods/:id/:period", anyone, read, s.getBillingPeriod)
	v1.POST("/billing/periods/:id/:period/tariff", allow(api.RoleCustomer, api.RoleUtility), small, write, s.idempotent, s.agreeTariff)
	v1.POST("/billing/periods/:id/:period/key", customer, small, write, s.idempotent, s.recordKeyIssued)
	v1.POST("/billing/periods/:id/:period/bill", utility, small, write, s.idempotent, s.recordBill)

	v1.GET("/findings", anyone, read, s.listFindings)
	v1.GET("/transactions/:txId", anyone, read, s.transactionStatus)
	v1.GET("/consortium", anyone, read, s.consortium)
	v1.POST("/consortium/votes", operator, small, write, s.idempotent, s.voteConsortium)
	v1.GET("/consortium/votes/:action/:id", anyone, read, s.listVotes)
}

// Context keys.
const (
	keyPrincipal = "principal"
	keyRequestID = "requestID"
)

func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(keyRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

// observe logs every request (never its credentials or body) and counts it.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := strconv.Itoa(c.Writer.Status())
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(c.Request.Method, route, status).Inc()
	s.metrics.latency.WithLabelValues(c.Request.Method, route, status).Observe(elapsed.Seconds())
	attrs := []any{"method", c.Request.Method, "route", route, "status", c.Writer.Status(),
		"ms", elapsed.Milliseconds(), "request", c.GetString(keyRequestID)}
	if p, ok := c.Get(keyPrincipal); ok {
		attrs = append(attrs, "principal", p.(credentials.Principal).ID)
	}
	if route == "/healthz" || route == "/readyz" {
		s.log.Debug("request", attrs...)
		return
	}
	s.log.Info("request", attrs...)
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", "route", c.FullPath(), "panic", r)
			fail(c, problem(string(meter.CodeInternal), "internal error"))
		}
	}()
	c.Next()
}

// authenticate admits requests with a known bearer token.
func (s *Server) authenticate(c *gin.Context) {
	// The scheme is case-insensitive (RFC 7235).
	scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="inter-nmi-registry"`)
		fail(c, problem(api.CodeUnauthenticated, "send a credential of this NMI's registry in the header Authorization: Bearer TOKEN"))
		return
	}
	p, err := s.opts.Credentials.Authenticate(strings.TrimSpace(token))
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="inter-nmi-registry", error="invalid_token"`)
		fail(c, problem(api.CodeUnauthenticated, "the bearer token is not valid here: "+err.Error()))
		return
	}
	c.Set(keyPrincipal, p)
	c.Next()
}

func principal(c *gin.Context) credentials.Principal {
	p, _ := c.Get(keyPrincipal)
	return p.(credentials.Principal)
}

// allow admits only the given roles.
func allow(roles ...api.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principal(c)
		for _, r := range roles {
			if p.Role == r {
				c.Next()
				return
			}
		}
		names := make([]string, len(roles))
		for i, r := range roles {
			names[i] = string(r)
		}
		fail(c, problem(api.CodeRoleForbidden, "credential "+p.ID+" has role "+string(p.Role)+"; this endpoint needs "+strings.Join(names, " or ")))
	}
}

// limit bounds the request body.
func limit(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > n {
			fail(c, problem(string(meter.CodeTooLarge), "the request body is "+strconv.FormatInt(c.Request.ContentLength, 10)+" bytes; this endpoint takes at most "+strconv.FormatInt(n, 10)))
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}

// deadline bounds the time a request may spend, the ledger's work included.
func (s *Server) deadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 only while the NMI's peer answers through the gateway.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	if err := s.opts.Ledger.Ready(ctx); err != nil {
		if !errors.Is(err, ledger.ErrUnavailable) {
			err = errors.Join(ledger.ErrUnavailable, err)
		}
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registry_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "registry_http_request_duration_seconds", Help: "HTTP request latency by method, route and status.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "route", "status"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}
