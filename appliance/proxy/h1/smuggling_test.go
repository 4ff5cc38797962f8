package h1

import "testing"

const smuggled = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"

// smugglingCorpus holds request-smuggling attempts and near misses. A case
// h1 accepts is framed as msg, followed by rest on the connection.
var smugglingCorpus = []struct {
	name      string
	msg, rest string
	status    int  // 0: accepted
	goRejects bool // accepted by h1, refused by net/http (which is stricter there)
}{
	// Content-Length versus Transfer-Encoding.
	{name: "CL.TE", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"},
	{name: "TE.CL", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n"},
	{name: "CL.TE with CL 0", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE in HTTP/1.0 with CL", status: 400,
		msg: "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},

	// TE.TE: obfuscated Transfer-Encoding.
	{name: "TE xchunked", status: 400, msg: te("xchunked")},
	{name: "TE chunkedx", status: 400, msg: te("chunkedx")},
	{name: "TE space before colon", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE then TE x", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n"},
	{name: "TE x then TE chunked", status: 501,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE tab-prefixed value is OWS", msg: te("\tchunked") + "0\r\n\r\n", rest: smuggled},
	{name: "TE tab-prefixed field line", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE vertical tab", status: 400, msg: te("\x0bchunked")},
	{name: "TE form feed", status: 400, msg: te("chunked\x0c")},
	{name: "TE obs-fold", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE obs-fold after value", status: 400,
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n , identity\r\n\r\n0\r\n\r\n"},
	{name: "TE chunked, identity", status: 400, msg: te("chunked, identity")},
	{name: "TE identity, chunked", status: 501, msg: te("identity, chunked")},
	{name: "TE chunked, chunked", status: 400, msg: te("chunked, chunked")},
	{name: "TE quoted", status: 400, msg: te("\"chunked\"")},
	{name: "TE with parameter", status: 400, msg: te("chunked; q=1")},
	{name: "TE NUL", status: 400, msg: te("chunked\x00")},
	{name: "TE 8-bit lookalike", status: 400, msg: te("chunk\xc4\xb1d")}, // dotless i
	{name: "TE uppercase", msg: te("CHUNKED") + "3\r\nabc\r\n0\r\n\r\n", rest: smuggled},
	{name: "TE underscore name is another field",
		msg: "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", rest: smuggled},
	{name: "TE in HTTP/1.0", status: 400,
		msg: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},

	// Content-Length.
	{name: "CL duplicate same", msg: cl("5", "5") + "hello", rest: smuggled},
	{name: "CL duplicate differing", status: 400, msg: cl("5", "6") + "hello"},
	{name: "CL list differing", status: 400, msg: cl("5, 6") + "hello"},
	{name: "CL list same", msg: cl("5,5") + "hello", rest: smuggled, goRejects: true},
	{name: "CL same value, other spelling", msg: cl("5", "05") + "hello", rest: smuggled, goRejects: true},
	{name: "CL plus", status: 400, msg: cl("+5") + "hello"},
	{name: "CL minus", status: 400, msg: cl("-1")},
	{name: "CL inner space", status: 400, msg: cl(" 5 6") + "hello!"},
	{name: "CL hex", status: 400, msg: cl("0x5") + "hello"},
	{name: "CL overflow", status: 400, msg: cl("18446744073709551621") + "hello"},
	{name: "CL beyond 2^62", status: 400, msg: cl("4611686018427387905")},
	{name: "CL empty", status: 400, msg: cl("")},
	{name: "CL body holds a request", msg: cl("32") + smuggled, rest: smuggled},

	// Chunk framing.
	{name: "chunk size overflow", status: 400, msg: te("chunked") + "ffffffffffffffffff\r\nx\r\n0\r\n\r\n"},
	{name: "chunk size 2^64+5 wraps", status: 400, msg: te("chunked") + "10000000000000005\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size leading SP", status: 400, msg: te("chunked") + " 5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size -1", status: 400, msg: te("chunked") + "-1\r\n\r\n0\r\n\r\n"},
	{name: "chunk size 0x", status: 400, msg: te("chunked") + "0x5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size bare LF (TERM.EXT)", status: 400, msg: te("chunked") + "5;x\nhello\r\n0\r\n\r\n"},
	{name: "chunk data bare LF", status: 400, msg: te("chunked") + "5\r\nhello\n0\r\n\r\n"},
	{name: "chunk data 2 bytes but not CRLF", status: 400, msg: te("chunked") + "2\r\nabXY1\r\nZ\r\n0\r\n\r\n"},
	{name: "chunk end bare LF", status: 400, msg: te("chunked") + "0\r\n\n"},
	{name: "chunk extension BWS", msg: te("chunked") + "5 ; a = b\r\nhello\r\n0\r\n\r\n", rest: smuggled, goRejects: true},
	{name: "chunk extension with CR inside quotes", status: 400, msg: te("chunked") + "5;a=\"\r\n\"\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk trailer obs-fold", status: 400, msg: te("chunked") + "0\r\nX: a\r\n b\r\n\r\n"},

	// Line ends and field syntax.
	{name: "bare CR in value", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rContent-Length: 5\r\n\r\nhello"},
	{name: "bare CR as line end", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\rContent-Length: 5\r\n\r\nhello"},
	{name: "bare CR ending the head", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\n\r" + smuggled},
	{name: "NUL in header", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "NUL in name", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length\x00: 5\r\n\r\nhello"},
	{name: "space before colon in CL", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello"},
	{name: "non-token name", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length[0]: 5\r\n\r\nhello"},
	{name: "obs-fold continuation", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n Content-Length: 5\r\n\r\nhello"},
	{name: "bare LF line ends", msg: "GET / HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello", rest: smuggled},

	// Host.
	{name: "absolute-form mismatched Host", status: 400, msg: "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"},
	{name: "missing Host in HTTP/1.1", status: 400, msg: "GET / HTTP/1.1\r\n\r\n"},
	{name: "two Host headers", status: 400, msg: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{name: "Host with userinfo", status: 400, msg: "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"},
}

func te(value string) string {
	return "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + value + "\r\n\r\n"
}

func cl(values ...string) string {
	s := "POST / HTTP/1.1\r\nHost: a\r\n"
	for _, v := range values {
		s += "Content-Length: " + v + "\r\n"
	}
	return s + "\r\n"
}

// TestSmuggling checks the exact outcome of every smuggling attempt, and
// that net/http frames every accepted one the same way: same message
// boundary, so the bytes after it are the same next request for both.
func TestSmuggling(t *testing.T) {
	for _, tt := range smugglingCorpus {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.msg + tt.rest)
			m, status := frame(t, data, 0)
			if status != tt.status {
				t.Fatalf("outcome %d, want %d", status, tt.status)
			}
			if status != 0 {
				return
			}
			if m.end != len(tt.msg) {
				t.Fatalf("message ends at %d, want %d", m.end, len(tt.msg))
			}
			_, _, gend, err := newGoReader(data).next()
			switch {
			case tt.goRejects && err == nil:
				t.Errorf("net/http accepts (end %d): drop goRejects", gend)
			case tt.goRejects:
				t.Logf("net/http refuses: %v", err)
			case err != nil:
				t.Errorf("net/http: %v", err)
			case gend != m.end:
				t.Errorf("net/http ends the message at %d, h1 at %d", gend, m.end)
			}
		})
	}
}
