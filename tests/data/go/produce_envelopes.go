// Command produce_envelopes writes ../go-produced-envelopes.json: envelopes as Go services
// write them, marshalled by Go's own encoding/json and time packages, for the round-trip test
// (tests/core/test_go_produced.py): streamsink must decode each one and re-encode it byte for
// byte.
//
// The Envelope struct is loom-mcp's (features/stream/pulse): field order, JSON names and
// omitempty as there; Payload is any (a decoded event's payload is a json.RawMessage, a sent
// one any value) and ServerData loom's rawjson.Message, a []byte whose MarshalJSON returns it
// as is ("null" when empty). Marshal compacts what a Marshaler returns and escapes <, >, & and
// U+2028/U+2029 in it (encoding/json/encode.go, compact with escapeHTML), so RawMessage bytes
// come out compacted, with their number forms, escapes and non-UTF-8 bytes untouched.
//
// Run from this directory with the standard library alone: go run produce_envelopes.go
package main

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"strings"
	"time"
)

// rawMessage is loom's rawjson.Message.
type rawMessage []byte

func (m rawMessage) MarshalJSON() ([]byte, error) {
	if len(m) == 0 {
		return []byte("null"), nil
	}
	return m, nil
}

type envelope struct {
	Type       string     `json:"type"`
	EventKey   string     `json:"event_key,omitempty"`
	RunID      string     `json:"run_id"`
	SessionID  string     `json:"session_id,omitempty"`
	Timestamp  time.Time  `json:"timestamp"`
	Payload    any        `json:"payload,omitempty"`
	ServerData rawMessage `json:"server_data,omitempty"`
}

type vector struct {
	Name string `json:"name"`
	Why  string `json:"why"`
	// The envelope bytes Go wrote, base64 (some are not UTF-8).
	Envelope string `json:"envelope_base64"`
	// The same bytes as text where they are UTF-8, for reading; empty otherwise.
	Text string `json:"envelope_text,omitempty"`
	// The timestamp as Unix seconds and the nanosecond within it, for the decoded-fields check
	// (UnixNano overflows outside 1678-2262).
	UnixSeconds int64 `json:"unix_seconds"`
	Nanosecond  int   `json:"nanosecond"`
}

type toolEnd struct {
	ToolCallID string          `json:"tool_call_id"`
	ToolName   string          `json:"tool_name"`
	Result     json.RawMessage `json:"result,omitempty"`
	Duration   time.Duration   `json:"duration"`
}

func main() {
	utc := func(ns int) time.Time { return time.Date(2026, 11, 26, 17, 19, 26, ns, time.UTC) }
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	cases := []struct {
		name, why string
		env       envelope
	}{
		{"tool_end with raw server_data", "server_data keeps 2.50 and 1e3; nanosecond timestamp",
			envelope{Type: "tool_end", EventKey: "k1", RunID: "r1", SessionID: "s1", Timestamp: utc(123456789),
				Payload:    toolEnd{ToolCallID: "c1", ToolName: "svc.search", Result: json.RawMessage(`{"status":"ok"}`), Duration: 84210000},
				ServerData: rawMessage(`{"rows":[1,2.50,1e3],"x":"\u00e9\/"}`)}},
		{"trailing zeros trimmed", "RFC3339Nano drops trailing zeros of the fraction",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(120000000), Payload: map[string]any{"text": "hi"}}},
		{"whole second", "no fraction at all",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(0), Payload: map[string]any{"text": "hi"}}},
		{"one nanosecond", "nine digits kept",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(1), Payload: map[string]any{"text": "hi"}}},
		{"offset timestamp", "a relayed time.Time keeps the zone it was parsed with",
			envelope{Type: "workflow", RunID: "r1", SessionID: "s1", Timestamp: time.Date(2026, 11, 26, 18, 19, 26, 5000, time.FixedZone("", 3600)), Payload: map[string]any{"phase": "start"}}},
		{"negative offset", "-05:30",
			envelope{Type: "workflow", RunID: "r1", SessionID: "s1", Timestamp: time.Date(2026, 11, 26, 11, 49, 26, 0, time.FixedZone("", -(5*3600+1800))), Payload: map[string]any{"phase": "start"}}},
		{"HTML characters", "Marshal escapes <, > and & in strings as \\u003c, \\u003e, \\u0026",
			envelope{Type: "assistant_reply", RunID: "r<1>", SessionID: "s&1", Timestamp: utc(5), Payload: map[string]any{"text": "<b>a & b</b>"}}},
		{"line and paragraph separators", "U+2028 and U+2029 are escaped",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{"text": "a\u2028b\u2029c"}}},
		{"control characters", "\\n, \\t and \\u0001 escapes; DEL is written as is",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{"text": "a\nb\tc\x01d\x7fe\"f\\g"}}},
		{"invalid UTF-8 in a Go string", "Marshal writes each invalid byte of a string as \\ufffd",
			envelope{Type: "assistant_reply", RunID: "r\xff1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{"text": "a\xc3(b"}}},
		{"floats as Go formats them", "1e+21, 1e-07, 0.000001, -0 and 123456789 from float64",
			envelope{Type: "usage", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{"a": 1e21, "b": 1e-7, "c": 0.000001, "d": math.Copysign(0, -1), "e": 123456789.0, "f": 0.1, "g": 1.5e300}}},
		{"map keys sorted", "Go writes map keys sorted",
			envelope{Type: "usage", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{"z": 1, "a": 2, "m": map[string]any{"y": true, "b": nil}}}},
		{"raw payload Python cannot hold exactly", "1e400, a 30-digit integer and -0.0 in a RawMessage stay as written",
			envelope{Type: "tool_end", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage(`{"big":1e400,"int":123456789012345678901234567890,"neg":-0.0,"tiny":1e-400}`)}},
		{"lone surrogate escapes", "a RawMessage keeps \\ud800 and \\udfff as written",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage(`{"text":"a\ud800b\udfffc\ud83d\ude00"}`), ServerData: rawMessage(`"\udc00"`)}},
		{"invalid UTF-8 in a RawMessage", "compact copies the bytes of a string as they are",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage("{\"text\":\"a\xff\xfeb\"}")}},
		{"HTML in a RawMessage", "compact escapes <, >, & and U+2028 inside RawMessage strings too",
			envelope{Type: "tool_end", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage(`{"html":"<i>&amp;</i>","sep":"a` + "\u2028" + `b"}`), ServerData: rawMessage(`["<>"]`)}},
		{"whitespace compacted", "Marshal compacts a RawMessage: whitespace between tokens goes",
			envelope{Type: "tool_end", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage("{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } }"), ServerData: rawMessage(" [ 1.50 , \"x y\" ] ")}},
		{"duplicate keys", "a RawMessage keeps both members",
			envelope{Type: "tool_end", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage(`{"a":1,"a":2}`)}},
		{"deep nesting", "5000 levels (Go reads 10000)",
			envelope{Type: "tool_end", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: json.RawMessage(deep)}},
		{"empty optional fields", "event_key, session_id, payload and server_data omitted; run_id always written",
			envelope{Type: "run_stream_end", Timestamp: utc(5)}},
		{"null and scalar payloads", "a RawMessage payload of null is written (omitempty drops only a nil interface)",
			envelope{Type: "custom", RunID: "r1", Timestamp: utc(5), Payload: json.RawMessage(`null`)}},
		{"string payload", "payload need not be an object",
			envelope{Type: "custom", RunID: "r1", Timestamp: utc(5), Payload: "just text"}},
		{"unicode as is", "non-ASCII text is written as UTF-8, not escaped",
			envelope{Type: "assistant_reply", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{"text": "é ü 日本 😀"}}},
		{"server_data scalar", "server_data may be any JSON value",
			envelope{Type: "tool_end", RunID: "r1", SessionID: "s1", Timestamp: utc(5), Payload: map[string]any{}, ServerData: rawMessage(`12345678901234567890123`)}},
		{"last nanosecond of year 9999", "the end of the range a datetime holds",
			envelope{Type: "workflow", RunID: "r1", Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"Go's zero time", "an unset time.Time is written, as 0001-01-01T00:00:00Z",
			envelope{Type: "workflow", RunID: "r1"}},
	}
	var out []vector
	for _, c := range cases {
		data, err := json.Marshal(c.env)
		if err != nil {
			panic(c.name + ": " + err.Error())
		}
		v := vector{Name: c.name, Why: c.why, Envelope: base64.StdEncoding.EncodeToString(data), UnixSeconds: c.env.Timestamp.Unix(), Nanosecond: c.env.Timestamp.Nanosecond()}
		if s := string(data); strings.ToValidUTF8(s, "\uFFFD") == s && len(s) < 2000 {
			v.Text = s
		}
		out = append(out, v)
	}
	doc := map[string]any{
		"about": "Envelopes written by Go's encoding/json (go1.19) with loom-mcp's Envelope struct, " +
			"by tests/data/go/produce_envelopes.go. streamsink decodes each and re-encodes it byte for byte. " +
			"Regenerate with: cd tests/data/go && go run produce_envelopes.go",
		"vectors": out,
	}
	f, err := os.Create("../go-produced-envelopes.json")
	if err != nil {
		panic(err)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	f.Close()
}
