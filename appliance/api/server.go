package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"halb/appliance/config"
	"halb/appliance/timesync"
)

// Daemon is what the API serves: implemented by appliance/daemon.
type Daemon interface {
	// Status returns a snapshot of every component.
	Status() Status
	// Running returns the config in force and its bytes; nil while unconfigured.
	Running() (*config.Config, []byte)
	// ApplyFrom validates raw, saves it atomically, applies it and
	// records it in the config history; source is SourceAPI or
	// SourceConsole, name what messages call the config (the client's
	// file name, or "api"). A config that fails validation returns
	// config.Errors, one this node cannot take (a listen address in use)
	// config.Errors wrapping ErrConflict; either changes nothing.
	ApplyFrom(source, name string, raw []byte) (ApplyResult, error)
	// ApplyConfirmed is ApplyFrom for a change that goes back to the
	// running config unless Confirm comes within within. While it awaits
	// confirmation, other changes are refused (ErrConflict).
	ApplyConfirmed(source, name string, raw []byte, within time.Duration) (ApplyResult, error)
	// Confirm keeps the change that awaits confirmation; none wraps
	// ErrNotFound.
	Confirm() error
	// RevertNow puts back the config before the change that awaits
	// confirmation at once; none wraps ErrNotFound.
	RevertNow() error
	// TestNetwork checks the management network from this node: the
	// gateway answers a ping, names resolve, the time servers answer,
	// the peers answer a ping. Each check is one result.
	TestNetwork(ctx context.Context) ([]CheckResult, error)
	// TestTime queries time servers once (the configured ones when none
	// are named) without changing the clock or the daemon's state.
	TestTime(ctx context.Context, servers []string) ([]timesync.ServerStatus, error)
	// History lists the applied configs kept, newest first.
	History() []HistoryEntry
	// HistoryConfig returns the YAML of a version of the history; one
	// that is not kept is an error wrapping ErrNotFound.
	HistoryConfig(version int) ([]byte, error)
	// Rollback applies a version of the history again, as ApplyFrom, and
	// records it as a new version from SourceRollback. A version not kept
	// wraps ErrNotFound.
	Rollback(version int) (ApplyResult, error)
	// Events is the broker behind GET /v1/events.
	Events() *Broker
	// Handover makes the named VRRP instances (all when none) give up
	// MASTER now. An unknown name is an error wrapping ErrNotFound.
	Handover(instances []string) error
	// SetMaintenance turns maintenance on (this node keeps no VIPs) or
	// off; it survives a daemon restart.
	SetMaintenance(on bool) error
	// Maintenance reports whether maintenance is on.
	Maintenance() bool
	// DrainServer drains a server ("backend/server": no new sessions,
	// open ones and persistent clients finish) or makes it ready again; it
	// survives reloads and restarts. An unknown server wraps ErrNotFound.
	DrainServer(server string, drain bool) error
	// Drained lists the drained servers.
	Drained() []string
	// Interfaces lists the node's network interfaces with the VRRP
	// routers heard on each.
	Interfaces() ([]Interface, error)
	// ConsoleAuth says whether a console password is set and whether the
	// console must ask for it.
	ConsoleAuth() ConsoleAuth
	// SetConsolePassword sets the console password. When one is set, old
	// must be it: else an error wrapping ErrUnauthorized, or a
	// *RetryError while wrong passwords are being held off. A password too
	// short wraps ErrInvalid.
	SetConsolePassword(password, old string) error
	// ResetConsolePassword removes the console password.
	ResetConsolePassword() error
	// Logs returns the newest n log records, oldest first.
	Logs(n int) []LogRecord
	// Reboot and Poweroff run systemctl reboot or poweroff; a daemon not
	// started with -system-actions refuses with an error wrapping
	// ErrNotEnabled.
	Reboot() error
	Poweroff() error
	// FactoryReset removes the config and all of halb's state, leaves the
	// daemon unconfigured and reboots. nodeName must be the running
	// node's name ("" while unconfigured), else an error wrapping
	// ErrInvalid. Refused as Reboot.
	FactoryReset(nodeName string) error
	// CheckConsolePassword returns nil for the right password, an error
	// wrapping ErrUnauthorized for a wrong one, a *RetryError after wrong
	// ones until a delay that grows with each has passed, and an error
	// wrapping ErrNoPassword when none is set.
	CheckConsolePassword(password string) error
	PeerDaemon
}

// ErrNotFound marks errors about objects that do not exist (404).
var ErrNotFound = errors.New("not found")

// ErrInvalid marks a request the daemon cannot take as given (400).
var ErrInvalid = errors.New("invalid request")

// ErrUnauthorized marks a wrong console password (401).
var ErrUnauthorized = errors.New("wrong password")

// ErrNotEnabled marks an action this daemon was not started to do (403).
var ErrNotEnabled = errors.New("not enabled on this node")

// ErrNoPassword marks a password check while no console password is set
// (409).
var ErrNoPassword = errors.New("no console password is set")

// Errorf formats an error as fmt.Errorf does that errors.Is also matches
// with kind (ErrInvalid, ErrNotFound, ...), without kind's text in its
// message.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// RetryError refuses a request for a while: a password check after wrong
// passwords (429, with Retry-After).
type RetryError struct {
	After time.Duration
	Msg   string
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%s: try again in %s", e.Msg, e.After.Round(100*time.Millisecond))
}

// ErrConflict marks a valid config that this node cannot take now, such as
// a listen address another program holds (409).
var ErrConflict = errors.New("cannot be applied on this node")

// Server serves the control API for one daemon.
type Server struct {
	d    Daemon
	log  *slog.Logger
	mux  *http.ServeMux
	opts Options
	// certMu serialises the changes of the certificate store.
	certMu sync.Mutex
}

// NewServer returns the API server of d.
func NewServer(d Daemon, log *slog.Logger) *Server { return NewServerWith(d, log, Options{}) }

// NewServerWith returns the API server of d that also serves what opts
// gives.
func NewServerWith(d Daemon, log *slog.Logger, opts Options) *Server {
	s := &Server{d: d, log: log, mux: http.NewServeMux(), opts: opts}
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/config", s.getConfig)
	s.mux.HandleFunc("PUT /v1/config", s.putConfig)
	s.mux.HandleFunc("POST /v1/config/validate", s.validate)
	s.mux.HandleFunc("POST /v1/config/confirm", s.confirm)
	s.mux.HandleFunc("POST /v1/config/revert", s.revertNow)
	s.mux.HandleFunc("POST /v1/network/test", s.testNetwork)
	s.mux.HandleFunc("POST /v1/time/test", s.testTime)
	s.mux.HandleFunc("GET /v1/config/history", s.history)
	s.mux.HandleFunc("GET /v1/config/history/{version}", s.historyConfig)
	s.mux.HandleFunc("POST /v1/config/rollback", s.rollback)
	s.mux.HandleFunc("GET /v1/events", s.events)
	s.mux.HandleFunc("POST /v1/vrrp/handover", s.handover)
	s.mux.HandleFunc("GET /v1/maintenance", s.getMaintenance)
	s.mux.HandleFunc("PUT /v1/maintenance", s.putMaintenance)
	s.mux.HandleFunc("GET /v1/drain", s.getDrain)
	s.mux.HandleFunc("PUT /v1/drain", s.putDrain)
	s.mux.HandleFunc("GET /v1/interfaces", s.interfaces)
	s.mux.HandleFunc("GET /v1/console/auth", s.consoleAuth)
	s.mux.HandleFunc("POST /v1/console/auth", s.checkPassword)
	s.mux.HandleFunc("PUT /v1/console/password", s.setPassword)
	s.mux.HandleFunc("DELETE /v1/console/password", s.resetPassword)
	s.mux.HandleFunc("GET /v1/logs", s.logs)
	s.mux.HandleFunc("GET /v1/import", s.importFiles)
	s.mux.HandleFunc("POST /v1/system/reboot", s.system("reboot", "rebooting"))
	s.mux.HandleFunc("POST /v1/system/poweroff", s.system("poweroff", "powering off"))
	s.mux.HandleFunc("POST /v1/system/factory-reset", s.system("factory-reset", "config and state removed; rebooting"))
	s.peerRoutes()
	s.certRoutes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Listen opens the unix socket at path with mode 0660, creating its
// directory. A socket file left by a daemon that is gone is replaced; one
// that still answers is an error, so two daemons never share a socket.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api: create socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("api: %s is in use by another daemon", path)
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: chmod %s: %w", path, err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends, then shuts down: open
// requests get a few seconds to finish and event streams are ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// maxBody bounds request bodies: a config plus room.
const maxBody = config.MaxSize + 1

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	body := ErrorBody{Error: err.Error()}
	if es := config.AsErrors(err); es != nil {
		body.Errors = es
		body.Error = fmt.Sprintf("config has %d problem(s)", len(es))
	}
	writeJSON(w, code, body)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.d.Status())
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	_, raw := s.d.Running()
	if raw == nil {
		writeError(w, http.StatusNotFound, errors.New("no config is in force (unconfigured)"))
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(raw)
}

// readConfigBody reads a request body holding a YAML config.
func readConfigBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("config is larger than %d bytes", config.MaxSize))
		} else {
			writeError(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
		}
		return nil, false
	}
	return raw, true
}

// configName is what messages call a config sent by a client: the file
// name it gives in ?name= (printable, at most 256 bytes), else "api".
func configName(r *http.Request) string {
	name := r.URL.Query().Get("name")
	if name == "" || len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return "api"
	}
	return name
}

// ClientHeader names the program behind a request: "console" for
// halb-console, whose configs the history records as SourceConsole.
const ClientHeader = "X-Halb-Client"

// sourceOf says where a config sent in r comes from.
func sourceOf(r *http.Request) string {
	if r.Header.Get(ClientHeader) == SourceConsole {
		return SourceConsole
	}
	return SourceAPI
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	raw, ok := readConfigBody(w, r)
	if !ok {
		return
	}
	var res ApplyResult
	var err error
	if q := r.URL.Query().Get("confirm_within"); q != "" {
		within, perr := time.ParseDuration(q)
		if perr != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("confirm_within: %q is not a duration (e.g. 60s)", q))
			return
		}
		res, err = s.d.ApplyConfirmed(sourceOf(r), configName(r), raw, within)
	} else {
		res, err = s.d.ApplyFrom(sourceOf(r), configName(r), raw)
	}
	writeApplied(w, res, err)
}

func (s *Server) revertNow(w http.ResponseWriter, r *http.Request) {
	if err := s.d.RevertNow(); err != nil {
		writeFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// testTimeout bounds the management network and time tests.
const testTimeout = 15 * time.Second

func (s *Server) testNetwork(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	l, err := s.d.TestNetwork(ctx)
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, CheckList{Checks: nonNilChecks(l)})
}

func (s *Server) testTime(w http.ResponseWriter, r *http.Request) {
	var req TimeTestRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req, `{"servers": ["ADDRESS OR NAME", ...]}`) {
		return
	}
	for _, sv := range req.Servers {
		if sv == "" || len(sv) > 253 || strings.ContainsFunc(sv, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("servers: %q is not an address or host name", sv))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	l, err := s.d.TestTime(ctx, req.Servers)
	if err != nil {
		writeFailure(w, err)
		return
	}
	if l == nil {
		l = []timesync.ServerStatus{}
	}
	writeJSON(w, http.StatusOK, TimeTestResult{Servers: l})
}

func nonNilChecks(l []CheckResult) []CheckResult {
	if l == nil {
		return []CheckResult{}
	}
	return l
}

func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	if err := s.d.Confirm(); err != nil {
		writeFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeApplied answers a request that applied a config (or did not).
func writeApplied(w http.ResponseWriter, res ApplyResult, err error) {
	if err != nil {
		writeFailure(w, err)
		return
	}
	res.Changes = nonNil(res.Changes)
	writeJSON(w, http.StatusOK, res)
}

// writeFailure answers err with the status its kind calls for.
func writeFailure(w http.ResponseWriter, err error) {
	var re *RetryError
	switch {
	case errors.As(err, &re):
		w.Header().Set("Retry-After", strconv.Itoa(int((re.After+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, err)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrUnauthorized):
		writeError(w, http.StatusUnauthorized, err)
	case errors.Is(err, ErrNotEnabled):
		writeError(w, http.StatusForbidden, err)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrConflict), errors.Is(err, ErrNoPassword):
		writeError(w, http.StatusConflict, err)
	case config.AsErrors(err) != nil:
		writeError(w, http.StatusUnprocessableEntity, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

// system answers the POST /v1/system/ requests: 202 once the action is
// under way (systemctl has queued the job), or why not.
func (s *Server) system(action, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch action {
		case "reboot":
			err = s.d.Reboot()
		case "poweroff":
			err = s.d.Poweroff()
		case "factory-reset":
			var req FactoryResetRequest
			if !decodeBody(w, r, &req, `{"node_name": "this node's name"}`) {
				return
			}
			err = s.d.FactoryReset(req.NodeName)
		}
		if err != nil {
			writeFailure(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, SystemResult{Action: action, Message: msg})
	}
}

// DefaultLogs is how many log records GET /v1/logs returns without ?n=.
const DefaultLogs = 100

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	n := DefaultLogs
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("n=%q: want a positive number of log records", q))
			return
		}
		n = v
	}
	l := s.d.Logs(n)
	if l == nil {
		l = []LogRecord{}
	}
	writeJSON(w, http.StatusOK, LogList{Records: l})
}

func (s *Server) consoleAuth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.d.ConsoleAuth())
}

func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request) {
	var req AuthRequest
	if !decodeBody(w, r, &req, `{"password": "..."}`) {
		return
	}
	if err := s.d.CheckConsolePassword(req.Password); err != nil {
		writeFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var req PasswordRequest
	if !decodeBody(w, r, &req, `{"password": "...", "old": "..."}`) {
		return
	}
	if err := s.d.SetConsolePassword(req.Password, req.Old); err != nil {
		writeFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) {
	if err := s.d.ResetConsolePassword(); err != nil {
		writeFailure(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	l := s.d.History()
	if l == nil {
		l = []HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, HistoryList{Entries: l})
}

// version parses a config version given by a client.
func parseVersion(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("config version %q is not a positive whole number", s)
	}
	return v, nil
}

func (s *Server) historyConfig(w http.ResponseWriter, r *http.Request) {
	v, err := parseVersion(r.PathValue("version"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	raw, err := s.d.HistoryConfig(v)
	if err != nil {
		writeFailure(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(raw)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	if !decodeBody(w, r, &req, `{"version": N}`) {
		return
	}
	if req.Version <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: version %d: want the positive version number of a config in the history", req.Version))
		return
	}
	res, err := s.d.Rollback(req.Version)
	writeApplied(w, res, err)
}

// decodeBody decodes a JSON request body of at most 64 KiB into v; an
// unknown field is an error. On error it answers 400 saying what the body
// should be (want) and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, want string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: want %s: %w", want, err))
		return false
	}
	return true
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	raw, ok := readConfigBody(w, r)
	if !ok {
		return
	}
	cfg, err := config.Parse(configName(r), raw)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	running, _ := s.d.Running()
	writeJSON(w, http.StatusOK, ApplyResult{Changes: nonNil(config.Diff(running, cfg))})
}

func nonNil(c []config.Change) []config.Change {
	if c == nil {
		return []config.Change{}
	}
	return c
}

// HandoverRequest is the body of POST /v1/vrrp/handover.
type HandoverRequest struct {
	// Instances to hand over; empty: every instance.
	Instances []string `json:"instances"`
}

func (s *Server) handover(w http.ResponseWriter, r *http.Request) {
	var req HandoverRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	switch err := s.d.Handover(req.Instances); {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusConflict, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"handover": req.Instances})
	}
}

// MaintenanceState is the body of GET and PUT /v1/maintenance.
type MaintenanceState struct {
	On bool `json:"on"`
}

func (s *Server) getMaintenance(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, MaintenanceState{On: s.d.Maintenance()})
}

func (s *Server) putMaintenance(w http.ResponseWriter, r *http.Request) {
	var req MaintenanceState
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: want {\"on\": true|false}: %w", err))
		return
	}
	if err := s.d.SetMaintenance(req.On); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, MaintenanceState{On: s.d.Maintenance()})
}

// DrainRequest is the body of PUT /v1/drain.
type DrainRequest struct {
	Server string `json:"server"` // backend/server
	Drain  bool   `json:"drain"`
}

// DrainState is the answer of GET and PUT /v1/drain.
type DrainState struct {
	Drained []string `json:"drained"`
}

func (s *Server) getDrain(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, DrainState{Drained: s.d.Drained()})
}

func (s *Server) putDrain(w http.ResponseWriter, r *http.Request) {
	var req DrainRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: want {\"server\": \"backend/server\", \"drain\": true|false}: %w", err))
		return
	}
	switch err := s.d.DrainServer(req.Server, req.Drain); {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, DrainState{Drained: s.d.Drained()})
	}
}

// events streams JSON lines until the client goes away or the server stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	ch, cancel := s.d.Events().Subscribe(256)
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	enc := json.NewEncoder(w)
	// The first line tells the client the stream is live.
	enc.Encode(Event{Time: time.Now(), Type: "events.subscribed", Message: "following halbd events"})
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			// Deliver what was published before the end (daemon.stopping).
			for {
				select {
				case ev := <-ch:
					if enc.Encode(ev) != nil {
						return
					}
				default:
					fl.Flush()
					return
				}
			}
		case ev := <-ch:
			if err := enc.Encode(ev); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func (s *Server) interfaces(w http.ResponseWriter, r *http.Request) {
	l, err := s.d.Interfaces()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if l == nil {
		l = []Interface{}
	}
	writeJSON(w, http.StatusOK, InterfaceList{Interfaces: l})
}
