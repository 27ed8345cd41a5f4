package audit

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
)

func b64(b []byte) string               { return base64.StdEncoding.EncodeToString(b) }
func hexs(b []byte) string              { return hex.EncodeToString(b) }
func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
