package envoyhost

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
)

// Properties a module reads with proxy_get_property, serialized as Envoy does: strings as
// their bytes, integers as 8 little-endian bytes, booleans as one byte, maps as pairs.
// This host knows the ones filters commonly read; others are NotFound.

func hostGetProperty(v *vm, s []uint64) {
	path, ok := readPath(v, u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	value, found := v.property(path)
	if !found {
		ret(s, resultNotFound)
		return
	}
	ret(s, v.copyOut(value, u32(s[2]), u32(s[3])))
}

// hostSetProperty stores a value in the stream's filter state, readable back by its
// path, as Envoy's CelState does; outside a stream there is nowhere to keep it.
func hostSetProperty(v *vm, s []uint64) {
	path, ok1 := v.readString(u32(s[0]), u32(s[1]))
	value, ok2 := v.read(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	st := v.stream()
	if st == nil {
		ret(s, resultNotFound)
		return
	}
	if st.filterState == nil {
		st.filterState = map[string][]byte{}
	}
	st.filterState[path] = value
	ret(s, resultOk)
}

func (v *vm) property(path []string) ([]byte, bool) {
	cfg := v.host.cfg
	switch strings.Join(path, ".") {
	case "plugin_name":
		return []byte(cfg.PluginName), true
	case "plugin_root_id":
		return []byte(cfg.RootID), true
	case "plugin_vm_id":
		return []byte(cfg.VMID), true
	case "node.id":
		return []byte("entra-auth-wasmhost"), true
	case "node.cluster":
		return []byte("entra-auth-wasmhost"), true
	}
	st := v.stream()
	if st == nil {
		return nil, false
	}
	if value, ok := st.filterState[strings.Join(path, "\x00")]; ok {
		return value, true
	}
	if len(path) == 0 {
		return nil, false
	}
	headers := st.req.headers
	header := func(name string) ([]byte, bool) {
		value, ok := headers.get(name)
		return []byte(value), ok
	}
	switch path[0] {
	case "request":
		if len(path) != 2 {
			return nil, false
		}
		switch path[1] {
		case "path":
			return header(":path")
		case "url_path":
			p, _ := headers.get(":path")
			p, _, _ = strings.Cut(p, "?")
			return []byte(p), true
		case "query":
			p, _ := headers.get(":path")
			_, q, _ := strings.Cut(p, "?")
			return []byte(q), true
		case "host":
			return header(":authority")
		case "scheme":
			return header(":scheme")
		case "method":
			return header(":method")
		case "id":
			return header("x-request-id")
		case "referer":
			return header("referer")
		case "useragent":
			return header("user-agent")
		case "protocol":
			return []byte(st.info.protocol), true
		case "time":
			return int64Bytes(st.info.start.UnixNano()), true
		case "headers":
			return encodePairs(headers), true
		}
	case "response":
		if len(path) != 2 || st.resp.headers == nil {
			return nil, false
		}
		switch path[1] {
		case "code":
			code, err := strconv.Atoi(firstValue(st.resp.headers, ":status"))
			if err != nil {
				return nil, false
			}
			return int64Bytes(int64(code)), true
		case "headers":
			return encodePairs(st.resp.headers), true
		}
	case "source", "destination":
		addr := st.info.remote
		if path[0] == "destination" {
			addr = st.info.local
		}
		if len(path) != 2 || addr == "" {
			return nil, false
		}
		switch path[1] {
		case "address":
			return []byte(addr), true
		case "port":
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, false
			}
			n, err := strconv.Atoi(port)
			if err != nil {
				return nil, false
			}
			return int64Bytes(int64(n)), true
		}
	case "connection":
		if len(path) == 2 && path[1] == "mtls" {
			return []byte{0}, true
		}
	case "connection_id":
		return int64Bytes(int64(st.info.connectionID)), true
	case "route_name":
		return []byte("default"), true
	case "cluster_name":
		return []byte("upstream"), true
	}
	return nil, false
}

func firstValue(h headerMap, key string) string {
	v, _ := h.get(key)
	return v
}

func int64Bytes(n int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(n))
}
