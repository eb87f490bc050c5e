// Command generate writes the Go wire vectors of tests/data from Go's own encoding/json, time
// and regexp packages (standard library only), for tests/core/test_go_vectors.py:
//
//   - ../go-produced-envelopes.json: envelopes as Go services write them (produceEnvelopes);
//   - ../go-decoded-envelopes.json: what loom-mcp's Go decoder makes of envelope bytes
//     (decodeEnvelopes);
//   - ../go-topic-patterns.json: which topic patterns Go's regexp compiles and what they match
//     (topicPatterns).
//
// Run from this directory: go run generate.go
package main

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

func main() {
	produceEnvelopes()
	decodeEnvelopes()
	topicPatterns()
}

// writeJSON writes doc to path, indented, without Go's HTML escaping (the files are read, not
// served).
func writeJSON(path string, doc any) {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}

// -- produceEnvelopes --------------------------------------------

// produceEnvelopes writes ../go-produced-envelopes.json: envelopes as Go services
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

func produceEnvelopes() {
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
			"by tests/data/go/generate.go. streamsink decodes each and re-encodes it byte for byte. " +
			"Regenerate with: cd tests/data/go && go run generate.go",
		"vectors": out,
	}
	writeJSON("../go-produced-envelopes.json", doc)
}

// -- decodeEnvelopes ---------------------------------------------

// decodeEnvelopes writes ../go-decoded-envelopes.json: what loom-mcp's Go decoder makes
// of decodedEnvelope bytes that are not all Go-produced (hand-written, other producers, hostile ones),
// decoded by Go's own encoding/json and time packages, for tests/core/test_go_decoded.py:
// streamsink must accept every decodedEnvelope Go accepts, with the same fields.
//
// loom's default decoder unmarshals the decodedEnvelope into a struct of its string fields, a
// time.Time timestamp and json.RawMessage payload and server_data (a RawMessage keeps the raw
// bytes of the value, and a JSON null as the bytes "null"); unknown keys are ignored and any
// error fails the decode. Go's json.Unmarshal of a string field replaces invalid UTF-8 and lone
// surrogate escapes with U+FFFD; a JSON null leaves a string or time.Time at its zero value.

type decodedEnvelope struct {
	Type       string          `json:"type"`
	EventKey   string          `json:"event_key"`
	RunID      string          `json:"run_id"`
	SessionID  string          `json:"session_id"`
	Timestamp  time.Time       `json:"timestamp"`
	Payload    json.RawMessage `json:"payload"`
	ServerData json.RawMessage `json:"server_data"`
}

type decodeResult struct {
	Name  string `json:"name"`
	Input string `json:"input_base64"`
	Text  string `json:"input_text,omitempty"`
	// Go's verdict: the error text when it refuses, empty when it decodes.
	Error string `json:"go_error,omitempty"`
	// The decoded fields, when it decodes. Strings are base64 of Go's bytes (always UTF-8 here).
	Type      string `json:"type,omitempty"`
	EventKey  string `json:"event_key,omitempty"`
	RunID     string `json:"run_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// Timestamp: set false when the key is missing or null (Go's zero time).
	HasTime     bool   `json:"has_timestamp"`
	UnixSeconds int64  `json:"unix_seconds,omitempty"`
	Nanosecond  int    `json:"nanosecond,omitempty"`
	Offset      int    `json:"utc_offset_seconds,omitempty"`
	Payload     string `json:"payload_base64,omitempty"`
	HasPayload  bool   `json:"has_payload"`
	ServerData  string `json:"server_data_base64,omitempty"`
	HasServer   bool   `json:"has_server_data"`
}

func decodeEnvelopes() {
	head := `{"type":"t","run_id":"r","timestamp":`
	inputs := []struct{ name, input string }{
		{"plain", `{"type":"tool_end","run_id":"r","session_id":"s","timestamp":"2026-11-26T17:19:26.123456789Z","payload":{"a":1}}`},
		{"offset +01:00", head + `"2026-11-26T18:19:26.5+01:00"}`},
		{"offset -00:00", head + `"2026-11-26T17:19:26-00:00"}`},
		{"lower-case t and z", head + `"2026-11-26t17:19:26z"}`},
		{"comma before the fraction", head + `"2026-11-26T17:19:26,5Z"}`},
		{"ten fractional digits", head + `"2026-11-26T17:19:26.1234567891Z"}`},
		{"fraction without digits", head + `"2026-11-26T17:19:26.Z"}`},
		{"hour 24", head + `"2026-11-26T24:00:00Z"}`},
		{"second 60", head + `"2026-11-26T23:59:60Z"}`},
		{"February 30", head + `"2026-02-30T10:00:00Z"}`},
		{"space instead of T", head + `"2026-11-26 17:19:26Z"}`},
		{"no zone", head + `"2026-11-26T17:19:26"}`},
		{"offset without colon", head + `"2026-11-26T17:19:26+0100"}`},
		{"offset +24:00", head + `"2026-11-26T17:19:26+24:00"}`},
		{"year 0000", head + `"0000-01-01T00:00:00Z"}`},
		{"year 9999 behind UTC", head + `"9999-12-31T23:59:59-01:00"}`},
		{"year 0001 ahead of UTC", head + `"0001-01-01T00:00:00+01:00"}`},
		{"timestamp null", head + `null}`},
		{"timestamp missing", `{"type":"t","run_id":"r"}`},
		{"timestamp a number", head + `1700000000}`},
		{"timestamp with escapes", head + `"2026-11-26T17:19:26\u005a"}`},
		{"empty object", `{}`},
		{"type null", `{"type":null,"run_id":"r"}`},
		{"type a number", `{"type":5}`},
		{"run_id null", `{"type":"t","run_id":null}`},
		{"session_id an object", `{"type":"t","session_id":{}}`},
		{"payload null", `{"type":"t","payload":null}`},
		{"server_data null", `{"type":"t","server_data":null}`},
		{"big numbers", `{"type":"t","payload":{"a":1e400,"b":123456789012345678901234567890,"c":-1e-400},"server_data":1e999}`},
		{"lone surrogates in strings", `{"type":"t\ud800","run_id":"\udc00x","payload":"\ud800","server_data":["\udfff"]}`},
		{"surrogate pair", `{"type":"\ud83d\ude00"}`},
		{"invalid UTF-8 in strings", "{\"type\":\"t\xff\",\"run_id\":\"a\xc3(\",\"payload\":\"\xfe\"}"},
		{"invalid UTF-8 outside strings", "{\"type\":\"t\"}\xff"},
		{"escaped key", `{"\u0074ype":"t","run_\u0069d":"r"}`},
		{"key case folded", `{"TYPE":"t","Run_ID":"r"}`},
		{"exact and folded key", `{"type":"a","TYPE":"b","Type":"c"}`},
		{"Kelvin sign and long s fold", `{"type":"t","event_\u212aey":"k","\u017fession_id":"s"}`},
		{"duplicate keys", `{"type":"a","type":"b","payload":1,"payload":2}`},
		{"unknown keys", `{"type":"t","v":2,"seq":[1],"traceparent":"00-x"}`},
		{"trace context (streamsink.otel)", `{"type":"tool_end","run_id":"r","session_id":"s","timestamp":"2026-11-26T17:19:26.123456789Z","payload":{"a":1},"trace_context":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"vendor=1"}}`},
		{"whitespace everywhere", " \t\n{ \"type\" : \"t\" ,\r\n \"payload\" : [ 1 , 2 ] } \n"},
		{"deep payload", `{"type":"t","payload":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`},
		{"too deep payload", `{"type":"t","payload":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`},
		{"trailing comma", `{"type":"t",}`},
		{"single quotes", `{'type':'t'}`},
		{"NaN", `{"type":"t","payload":NaN}`},
		{"leading zero", `{"type":"t","payload":01}`},
		{"raw control character in a string", "{\"type\":\"t\x01\"}"},
		{"DEL in a string", "{\"type\":\"t\x7f\"}"},
		{"top-level array", `[{"type":"t"}]`},
		{"two objects", `{"type":"a"}{"type":"b"}`},
		{"BOM", "\xef\xbb\xbf{\"type\":\"t\"}"},
		{"empty input", ``},
		{"NUL escape in type", `{"type":"t\u0000"}`},
	}
	var out []decodeResult
	for _, c := range inputs {
		r := decodeResult{Name: c.name, Input: base64.StdEncoding.EncodeToString([]byte(c.input))}
		if utf8.ValidString(c.input) && len(c.input) < 300 {
			r.Text = c.input
		}
		var env decodedEnvelope
		if err := json.Unmarshal([]byte(c.input), &env); err != nil {
			r.Error = err.Error()
		} else {
			b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
			r.Type, r.EventKey, r.RunID, r.SessionID = b(env.Type), b(env.EventKey), b(env.RunID), b(env.SessionID)
			if !env.Timestamp.IsZero() {
				r.HasTime = true
				r.UnixSeconds = env.Timestamp.Unix()
				r.Nanosecond = env.Timestamp.Nanosecond()
				_, r.Offset = env.Timestamp.Zone()
			}
			if env.Payload != nil {
				r.HasPayload, r.Payload = true, base64.StdEncoding.EncodeToString(env.Payload)
			}
			if env.ServerData != nil {
				r.HasServer, r.ServerData = true, base64.StdEncoding.EncodeToString(env.ServerData)
			}
		}
		out = append(out, r)
	}
	doc := map[string]any{
		"about": "What Go's encoding/json and time (go1.19) make of decodedEnvelope bytes, decoded into " +
			"loom-mcp's decodedEnvelope fields by tests/data/go/generate.go. streamsink accepts " +
			"every decodedEnvelope Go accepts. Later Go versions tightened time.Time's RFC 3339 parsing " +
			"(golang/go#54580, #57912), so a newer Go may refuse forms go1.19 accepts here (a ',' " +
			"before the fraction, zone offsets of 24 hours or more); accepting them is never a " +
			"loss. Regenerate with: cd tests/data/go && go run generate.go",
		"results": out,
	}
	writeJSON("../go-decoded-envelopes.json", doc)
}

// -- topicPatterns -----------------------------------------------

// topicPatterns writes ../go-topic-patterns.json: which topic patterns Go's regexp
// (RE2 syntax, what pulse's WithSinkTopicPattern and WithReaderTopicPattern compile with
// regexp.Compile) accepts, and which topics each accepted one matches with MatchString
// (unanchored), for tests/core/test_go_vectors.py: streamsink must refuse what Go refuses and
// select the same topics.

type patternResult struct {
	Pattern string `json:"pattern"`
	// Go's error when it refuses the pattern, empty when it compiles.
	Error string `json:"go_error,omitempty"`
	// For each topic of the shared list, whether MatchString matches it.
	Matches []bool `json:"matches,omitempty"`
}

func topicPatterns() {
	topics := []string{
		"", "ops", "devops", "ops.deploy", "OPS", "audit", "a\nb", "ops\n", "\nops",
		"x1", "x12", "a_b-c", "日本", "é", "İ", "ı", "K", "\u212a", "ab", "aab", "a.b",
		"tab\there", "{a}", "[x]", "a{,2}", "\x00", "ops/eu/1",
	}
	patterns := []string{
		"", "ops", "^ops$", "^ops", "ops$", "(?i)ops", "(?i:o)ps", "o.s", "(?s)a.b", "a.b",
		`\d`, `\w+`, `\s`, `\bops\b`, `\Bps`, `[[:alpha:]]+`, `[[:^digit:]]`, `\pL`, `\p{Han}`,
		`\PL`, `\z`, `ops\z`, `\Aops`, `\Z`, `(?m)^ops$`, `(?m)ops$`, `$`, `^$`, `^`, `a{,2}`,
		`a{2}`, `a{1001}`, `a{1000}`, `a*+`, `a++`, `a?+`, `(a)\1`, `(?P<n>a)(?P=n)`, `(?=a)`,
		`(?!a)`, `(?<=a)b`, `(?<!a)b`, `(?>a)`, `(?#c)a`, `(?<n>a)`, `(?P<n>a)`, `\Qa.b\E`,
		`\x41`, `\x{65e5}`, `\101`, `\12`, `\0`, `\8`, `\u0041`, `\N{DASH}`, `\G`, `(?x)a b`,
		`(?U)a+`, `(?a)a`, `(?u)a`, `(?L)a`, `(a`, `a)`, `[a`, `*a`, `a**`, `a{2,1}`,
		`(?i)K`, `(?i)k`, `(?i)i`, `(?i)I`, `(?i)ß`, `[^a]`, `[a-]`, `[]a]`, `[\d]`, `[\w-]`,
		`a|`, `|`, `()`, `(?:)`, `x(?i)ops`, `\.`, `\-`, `\/`, `\e`, `\a`, `\f`, `\v`, `\t`,
		`[[:word:]]`, `[[:foo:]]`, `\C`, `.`, `(?s).`, `\n`, `ops/.*/1`,
	}
	var out []patternResult
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		r := patternResult{Pattern: p}
		if err != nil {
			r.Error = err.Error()
		} else {
			for _, t := range topics {
				r.Matches = append(r.Matches, re.MatchString(t))
			}
		}
		out = append(out, r)
	}
	doc := map[string]any{
		"about": "Which topic patterns Go's regexp (go1.19) compiles and which topics each matches " +
			"(MatchString), by tests/data/go/generate.go. Regenerate with: cd tests/data/go " +
			"&& go run generate.go",
		"topics":  topics,
		"results": out,
	}
	writeJSON("../go-topic-patterns.json", doc)
}
