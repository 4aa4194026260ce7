package yarn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RMClient is a client of the ResourceManager's REST API (/ws/v1/cluster). It is safe for
// concurrent use.
type RMClient struct {
	base *url.URL
	user string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// NewRMClient returns a client of the ResourceManager web address baseURL (e.g.
// http://rm:8088). If user is not empty every request carries user.name=USER, which a cluster
// with simple HTTP authentication takes as the caller; otherwise the RM's
// hadoop.http.staticuser.user is the caller (dr.who by default, who may not submit).
func NewRMClient(baseURL, user string) (*RMClient, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("yarn: ResourceManager address %q: want http://host:port", baseURL)
	}
	return &RMClient{base: u, user: user}, nil
}

// NewApplication is a fresh application id and the largest container the cluster grants.
type NewApplication struct {
	ID          ApplicationID
	MaxResource Resource
}

// NewApplication asks the ResourceManager for an application id to submit under.
func (c *RMClient) NewApplication(ctx context.Context) (*NewApplication, error) {
	var resp struct {
		ID  string       `json:"application-id"`
		Max jsonResource `json:"maximum-resource-capability"`
	}
	if err := c.do(ctx, http.MethodPost, "/ws/v1/cluster/apps/new-application", nil, &resp); err != nil {
		return nil, err
	}
	id, err := ParseApplicationID(resp.ID)
	if err != nil {
		return nil, fmt.Errorf("yarn: new-application: %w", err)
	}
	return &NewApplication{ID: id, MaxResource: Resource{MemoryMB: int64(resp.Max.Memory), VCores: int32(resp.Max.VCores)}}, nil
}

// Submission describes an application to submit.
type Submission struct {
	ID   ApplicationID // from NewApplication
	Name string
	// Type is the application type shown by YARN; empty means "MAPFLOW".
	Type string
	// Queue empty means "default".
	Queue string
	// MaxAttempts is how many times YARN may start the ApplicationMaster; 0 means 1.
	MaxAttempts int32
	// Resource is the ApplicationMaster container's size.
	Resource Resource
	// AM is what the ApplicationMaster's container runs. Its Commands are joined with spaces;
	// its Tokens are not sent (the REST API takes credentials in another form).
	AM LaunchContext
	// Tags are application tags (lower-cased by YARN).
	Tags []string
}

// Submit submits the application. The ResourceManager accepts it (HTTP 202) before it
// schedules it: watch App for the outcome.
func (c *RMClient) Submit(ctx context.Context, s Submission) error {
	body, err := s.json()
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/ws/v1/cluster/apps", body, nil)
}

// AppReport is the ResourceManager's report of an application (the fields mapflow uses).
type AppReport struct {
	ID   string `json:"id"`
	User string `json:"user"`
	Name string `json:"name"`
	// Queue is where it runs.
	Queue string `json:"queue"`
	// State is NEW, NEW_SAVING, SUBMITTED, ACCEPTED, RUNNING, FINISHED, FAILED or KILLED.
	State string `json:"state"`
	// FinalStatus is UNDEFINED until the application ends, then SUCCEEDED, FAILED or KILLED
	// (for FINISHED, what the ApplicationMaster said).
	FinalStatus string  `json:"finalStatus"`
	Progress    float64 `json:"progress"`
	TrackingURL string  `json:"trackingUrl"`
	// Diagnostics is the ApplicationMaster's final diagnostics, or YARN's reason for a failure.
	Diagnostics       string `json:"diagnostics"`
	ApplicationType   string `json:"applicationType"`
	StartedTime       int64  `json:"startedTime"`
	FinishedTime      int64  `json:"finishedTime"`
	AMContainerLogs   string `json:"amContainerLogs"`
	AMHostHTTPAddress string `json:"amHostHttpAddress"`
	RunningContainers int32  `json:"runningContainers"`
}

// Terminal reports whether the application has ended (FINISHED, FAILED or KILLED).
func (r *AppReport) Terminal() bool {
	switch r.State {
	case "FINISHED", "FAILED", "KILLED":
		return true
	}
	return false
}

// App returns the application's report; an unknown id gives an error matching ErrNotFound.
func (c *RMClient) App(ctx context.Context, id ApplicationID) (*AppReport, error) {
	var resp struct {
		App *AppReport `json:"app"`
	}
	if err := c.do(ctx, http.MethodGet, "/ws/v1/cluster/apps/"+id.String(), nil, &resp); err != nil {
		return nil, err
	}
	if resp.App == nil {
		return nil, fmt.Errorf("yarn: app %s: no report in the response", id)
	}
	return resp.App, nil
}

// Wait polls App every interval until the application has ended or ctx is done, and returns the
// last report.
func (c *RMClient) Wait(ctx context.Context, id ApplicationID, interval time.Duration) (*AppReport, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := c.App(ctx, id)
		if err != nil {
			return r, err
		}
		if r.Terminal() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("yarn: waiting for %s (state %s): %w", id, r.State, ctx.Err())
		case <-t.C:
		}
	}
}

// Kill asks the ResourceManager to kill the application. It returns once the request is accepted
// (the kill itself completes shortly after); killing an application that has ended is not an error.
func (c *RMClient) Kill(ctx context.Context, id ApplicationID) error {
	return c.do(ctx, http.MethodPut, "/ws/v1/cluster/apps/"+id.String()+"/state", []byte(`{"state":"KILLED"}`), nil)
}

// RESTError is an error response of the ResourceManager's REST API.
type RESTError struct {
	Method, URL string
	StatusCode  int
	// Exception, JavaClassName and Message come from the RemoteException JSON body, if any.
	Exception     string
	JavaClassName string
	Message       string
}

// Error gives the request, the HTTP status and the RemoteException's class and message.
func (e *RESTError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if e.Exception != "" {
		msg = e.Exception + ": " + msg
	}
	return fmt.Sprintf("yarn: %s %s: %d: %s", e.Method, e.URL, e.StatusCode, shortMessage(msg))
}

// Is matches ErrNotFound for 404 and ErrUnauthorized for 401 and 403.
func (e *RESTError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

func (c *RMClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	u := *c.base
	u.Path += path
	if c.user != "" {
		u.RawQuery = url.Values{"user.name": {c.user}}.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("yarn: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("yarn: %s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("yarn: %s %s: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode >= 300 {
		e := &RESTError{Method: method, URL: u.Redacted(), StatusCode: resp.StatusCode}
		var re struct {
			R struct {
				Exception, Message, JavaClassName string
			} `json:"RemoteException"`
		}
		if json.Unmarshal(data, &re) == nil && re.R.Exception != "" {
			e.Exception, e.Message, e.JavaClassName = re.R.Exception, re.R.Message, re.R.JavaClassName
		} else {
			e.Message = strings.TrimSpace(string(data))
			if len(e.Message) > 500 {
				e.Message = e.Message[:500] + "..."
			}
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("yarn: %s %s: response: %w", method, u.Redacted(), err)
		}
	}
	return nil
}

// jsonResource is the REST API's resource object; old releases send numbers as strings.
type jsonResource struct {
	Memory flexInt `json:"memory"`
	VCores flexInt `json:"vCores"`
}

// flexInt decodes a JSON number or a string holding one.
type flexInt int64

// UnmarshalJSON accepts 42 and "42".
func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want a whole number, got %s", b)
	}
	*f = flexInt(v)
	return nil
}

type jsonEntry[V any] struct {
	Key   string `json:"key"`
	Value V      `json:"value"`
}

type jsonLocalResource struct {
	Resource   string `json:"resource"`
	Type       string `json:"type"`
	Visibility string `json:"visibility"`
	Size       int64  `json:"size"`
	Timestamp  int64  `json:"timestamp"`
}

// json encodes the application-submission-context of the REST API.
func (s Submission) json() ([]byte, error) {
	type spec struct {
		LocalResources *struct {
			Entry []jsonEntry[jsonLocalResource] `json:"entry"`
		} `json:"local-resources,omitempty"`
		Environment *struct {
			Entry []jsonEntry[string] `json:"entry"`
		} `json:"environment,omitempty"`
		Commands struct {
			Command string `json:"command"`
		} `json:"commands"`
	}
	type tags struct {
		Tag []string `json:"tag"`
	}
	var sub struct {
		ID          string       `json:"application-id"`
		Name        string       `json:"application-name"`
		Type        string       `json:"application-type"`
		Queue       string       `json:"queue"`
		MaxAttempts int32        `json:"max-app-attempts"`
		Resource    jsonResource `json:"resource"`
		AM          spec         `json:"am-container-spec"`
		Tags        *tags        `json:"application-tags,omitempty"`
	}
	sub.ID = s.ID.String()
	sub.Name = s.Name
	sub.Type = s.Type
	if sub.Type == "" {
		sub.Type = "MAPFLOW"
	}
	sub.Queue = s.Queue
	if sub.Queue == "" {
		sub.Queue = "default"
	}
	sub.MaxAttempts = s.MaxAttempts
	if sub.MaxAttempts == 0 {
		sub.MaxAttempts = 1
	}
	sub.Resource = jsonResource{Memory: flexInt(s.Resource.MemoryMB), VCores: flexInt(s.Resource.VCores)}
	if len(s.AM.LocalResources) > 0 {
		sub.AM.LocalResources = &struct {
			Entry []jsonEntry[jsonLocalResource] `json:"entry"`
		}{}
		for _, k := range sortedKeys(s.AM.LocalResources) {
			r := s.AM.LocalResources[k]
			if _, err := parseResourceURL(r.URL); err != nil {
				return nil, fmt.Errorf("yarn: submit %s: local resource %s: %w", s.ID, k, err)
			}
			sub.AM.LocalResources.Entry = append(sub.AM.LocalResources.Entry, jsonEntry[jsonLocalResource]{Key: k, Value: jsonLocalResource{
				Resource: r.URL, Type: r.Type.String(), Visibility: r.Visibility.String(), Size: r.Size, Timestamp: r.Timestamp,
			}})
		}
	}
	if len(s.AM.Environment) > 0 {
		sub.AM.Environment = &struct {
			Entry []jsonEntry[string] `json:"entry"`
		}{}
		for _, k := range sortedKeys(s.AM.Environment) {
			sub.AM.Environment.Entry = append(sub.AM.Environment.Entry, jsonEntry[string]{Key: k, Value: s.AM.Environment[k]})
		}
	}
	sub.AM.Commands.Command = strings.Join(s.AM.Commands, " ")
	if len(s.Tags) > 0 {
		sub.Tags = &tags{Tag: s.Tags}
	}
	return json.Marshal(sub)
}

// MarshalJSON writes a JSON number.
func (f flexInt) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(f), 10), nil }
