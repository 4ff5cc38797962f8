package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"halb/appliance/config"
	"halb/appliance/timesync"
)

// Client talks to halbd's control API over its unix socket.
type Client struct {
	socket string
	hc     *http.Client
	agent  string
}

// NewClient returns a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// SetAgent names the program using c to the daemon (the header
// X-Halb-Client). SourceConsole makes the configs it applies count as the
// console's in the config history. Call it before using c.
func (c *Client) SetAgent(agent string) { c.agent = agent }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://halbd"+path, rd)
	if err != nil {
		return nil, err
	}
	if c.agent != "" {
		req.Header.Set(ClientHeader, c.agent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // not the made-up URL
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("cannot reach halbd: %w", err)
		}
		return nil, fmt.Errorf("halbd at %s: %w", c.socket, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			return nil, fmt.Errorf("halbd: %s %s: %s", method, path, resp.Status)
		}
		if len(eb.Errors) > 0 {
			return nil, eb.Errors
		}
		se := &StatusError{Code: resp.StatusCode, Msg: eb.Error}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			se.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, se
	}
	return resp, nil
}

// StatusError is an error response of the API other than a config error
// list. errors.Is matches it with the error its code stands for:
// ErrInvalid (400), ErrUnauthorized (401), ErrNotEnabled (403),
// ErrNotFound (404).
type StatusError struct {
	Code int
	Msg  string
	// RetryAfter is when to try again (429: wrong passwords).
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return fmt.Sprintf("halbd: %s (%d)", e.Msg, e.Code) }

// Is reports whether target is the error e's code stands for.
func (e *StatusError) Is(target error) bool {
	switch e.Code {
	case http.StatusBadRequest:
		return target == ErrInvalid
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrNotEnabled
	case http.StatusNotFound:
		return target == ErrNotFound
	}
	return false
}

func (c *Client) getJSON(ctx context.Context, method, path string, body []byte, v any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.getJSON(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Config returns the running config's YAML.
func (c *Client) Config(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/config", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// ApplyConfig sends a new config, named "api" in the daemon's messages. A
// config with problems, or one the node cannot take (a listen address in
// use), returns config.Errors (use config.AsErrors) and the running config
// stays.
func (c *Client) ApplyConfig(ctx context.Context, raw []byte) ([]config.Change, error) {
	return c.ApplyConfigAs(ctx, "", raw)
}

// ApplyConfigAs is ApplyConfig for a config the daemon's messages and
// status call name (the file it came from; "" for "api").
func (c *Client) ApplyConfigAs(ctx context.Context, name string, raw []byte) ([]config.Change, error) {
	res, err := c.Apply(ctx, name, raw)
	return res.Changes, err
}

// Apply is ApplyConfigAs that also returns the version the config got in
// the config history.
func (c *Client) Apply(ctx context.Context, name string, raw []byte) (ApplyResult, error) {
	var res ApplyResult
	err := c.getJSON(ctx, http.MethodPut, "/v1/config"+nameQuery(name), raw, &res)
	return res, err
}

// ApplyConfirmed is Apply for a change that the daemon reverts unless
// Confirm comes within within (ApplyResult.ConfirmBy says when).
func (c *Client) ApplyConfirmed(ctx context.Context, name string, raw []byte, within time.Duration) (ApplyResult, error) {
	var res ApplyResult
	q := nameQuery(name)
	if q == "" {
		q = "?"
	} else {
		q += "&"
	}
	err := c.getJSON(ctx, http.MethodPut, "/v1/config"+q+"confirm_within="+url.QueryEscape(within.String()), raw, &res)
	return res, err
}

// Confirm keeps the change that awaits confirmation.
func (c *Client) Confirm(ctx context.Context) error {
	return c.noContent(ctx, http.MethodPost, "/v1/config/confirm", nil)
}

// RevertNow puts back the config before the change that awaits
// confirmation.
func (c *Client) RevertNow(ctx context.Context) error {
	return c.noContent(ctx, http.MethodPost, "/v1/config/revert", nil)
}

// TestNetwork runs the management network test.
func (c *Client) TestNetwork(ctx context.Context) ([]CheckResult, error) {
	var l CheckList
	err := c.getJSON(ctx, http.MethodPost, "/v1/network/test", nil, &l)
	return l.Checks, err
}

// TestTime queries time servers once (none: the configured ones).
func (c *Client) TestTime(ctx context.Context, servers []string) ([]timesync.ServerStatus, error) {
	body, _ := json.Marshal(TimeTestRequest{Servers: servers})
	var res TimeTestResult
	err := c.getJSON(ctx, http.MethodPost, "/v1/time/test", body, &res)
	return res.Servers, err
}

// History lists the applied configs the daemon keeps, newest first.
func (c *Client) History(ctx context.Context) ([]HistoryEntry, error) {
	var l HistoryList
	err := c.getJSON(ctx, http.MethodGet, "/v1/config/history", nil, &l)
	return l.Entries, err
}

// HistoryConfig returns the YAML of a version of the config history.
func (c *Client) HistoryConfig(ctx context.Context, version int) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/config/history/%d", version), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Rollback applies a version of the config history again. A config the
// daemon refuses returns config.Errors, as ApplyConfig; a version it does
// not keep a *StatusError with code 404.
func (c *Client) Rollback(ctx context.Context, version int) (ApplyResult, error) {
	body, _ := json.Marshal(RollbackRequest{Version: version})
	var res ApplyResult
	err := c.getJSON(ctx, http.MethodPost, "/v1/config/rollback", body, &res)
	return res, err
}

// ValidateConfig checks a config against the daemon without applying it
// and returns what would change.
func (c *Client) ValidateConfig(ctx context.Context, raw []byte) ([]config.Change, error) {
	return c.ValidateConfigAs(ctx, "", raw)
}

// ValidateConfigAs is ValidateConfig for a config named as in ApplyConfigAs.
func (c *Client) ValidateConfigAs(ctx context.Context, name string, raw []byte) ([]config.Change, error) {
	var res ApplyResult
	if err := c.getJSON(ctx, http.MethodPost, "/v1/config/validate"+nameQuery(name), raw, &res); err != nil {
		return nil, err
	}
	return res.Changes, nil
}

func nameQuery(name string) string {
	if name == "" {
		return ""
	}
	return "?name=" + url.QueryEscape(name)
}

// Handover asks the named VRRP instances (all when none) to give up MASTER.
func (c *Client) Handover(ctx context.Context, instances ...string) error {
	body, _ := json.Marshal(HandoverRequest{Instances: instances})
	resp, err := c.do(ctx, http.MethodPost, "/v1/vrrp/handover", body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// SetMaintenance turns maintenance on or off.
func (c *Client) SetMaintenance(ctx context.Context, on bool) error {
	body, _ := json.Marshal(MaintenanceState{On: on})
	var st MaintenanceState
	return c.getJSON(ctx, http.MethodPut, "/v1/maintenance", body, &st)
}

// DrainServer drains server ("backend/server") or makes it ready again; it
// returns the drained servers.
func (c *Client) DrainServer(ctx context.Context, server string, drain bool) ([]string, error) {
	body, _ := json.Marshal(DrainRequest{Server: server, Drain: drain})
	var st DrainState
	err := c.getJSON(ctx, http.MethodPut, "/v1/drain", body, &st)
	return st.Drained, err
}

// Drained lists the drained servers.
func (c *Client) Drained(ctx context.Context) ([]string, error) {
	var st DrainState
	err := c.getJSON(ctx, http.MethodGet, "/v1/drain", nil, &st)
	return st.Drained, err
}

// Maintenance reports whether maintenance is on.
func (c *Client) Maintenance(ctx context.Context) (bool, error) {
	var st MaintenanceState
	err := c.getJSON(ctx, http.MethodGet, "/v1/maintenance", nil, &st)
	return st.On, err
}

// Interfaces lists the node's network interfaces.
func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	var l InterfaceList
	err := c.getJSON(ctx, http.MethodGet, "/v1/interfaces", nil, &l)
	return l.Interfaces, err
}

// Logs returns the daemon's newest n log records (0: DefaultLogs), oldest
// first.
func (c *Client) Logs(ctx context.Context, n int) ([]LogRecord, error) {
	path := "/v1/logs"
	if n > 0 {
		path += "?n=" + strconv.Itoa(n)
	}
	var l LogList
	err := c.getJSON(ctx, http.MethodGet, path, nil, &l)
	return l.Records, err
}

// Reboot has the daemon reboot the machine; a daemon started without
// -system-actions refuses (an error matching ErrNotEnabled).
func (c *Client) Reboot(ctx context.Context) error {
	var res SystemResult
	return c.getJSON(ctx, http.MethodPost, "/v1/system/reboot", nil, &res)
}

// Poweroff has the daemon power the machine off; refused as Reboot.
func (c *Client) Poweroff(ctx context.Context) error {
	var res SystemResult
	return c.getJSON(ctx, http.MethodPost, "/v1/system/poweroff", nil, &res)
}

// FactoryReset has the daemon remove the config and all of halb's state
// and reboot; nodeName confirms it (the node's name, "" when
// unconfigured; another is an error matching ErrInvalid). Refused as
// Reboot.
func (c *Client) FactoryReset(ctx context.Context, nodeName string) error {
	body, _ := json.Marshal(FactoryResetRequest{NodeName: nodeName})
	var res SystemResult
	return c.getJSON(ctx, http.MethodPost, "/v1/system/factory-reset", body, &res)
}

// ConsoleAuth says whether a console password is set and required.
func (c *Client) ConsoleAuth(ctx context.Context) (ConsoleAuth, error) {
	var a ConsoleAuth
	err := c.getJSON(ctx, http.MethodGet, "/v1/console/auth", nil, &a)
	return a, err
}

// CheckConsolePassword returns nil when password is the console password.
// A wrong one is an error matching ErrUnauthorized; after wrong ones the
// daemon refuses checks for a while: a *StatusError with code 429 and
// RetryAfter.
func (c *Client) CheckConsolePassword(ctx context.Context, password string) error {
	body, _ := json.Marshal(AuthRequest{Password: password})
	return c.noContent(ctx, http.MethodPost, "/v1/console/auth", body)
}

// SetConsolePassword sets the console password; old is the current one
// (when one is set). A password shorter than 8 characters is an error
// matching ErrInvalid, a wrong old one ErrUnauthorized.
func (c *Client) SetConsolePassword(ctx context.Context, password, old string) error {
	body, _ := json.Marshal(PasswordRequest{Password: password, Old: old})
	return c.noContent(ctx, http.MethodPut, "/v1/console/password", body)
}

// ResetConsolePassword removes the console password.
func (c *Client) ResetConsolePassword(ctx context.Context) error {
	return c.noContent(ctx, http.MethodDelete, "/v1/console/password", nil)
}

// noContent sends a request whose answer has no body.
func (c *Client) noContent(ctx context.Context, method, path string, body []byte) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Events calls fn for each event until ctx ends, the stream ends, or fn
// returns an error (which Events returns).
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("halbd: bad event line: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("halbd: event stream: %w", err)
	}
	return errors.New("halbd: event stream ended")
}
