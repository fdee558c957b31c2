package deploy

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// openAPISchema is the structural OpenAPI v3 subset Kubernetes CRDs use.
type openAPISchema struct {
	Type                 string                    `json:"type"`
	Format               string                    `json:"format"`
	Properties           map[string]*openAPISchema `json:"properties"`
	AdditionalProperties json.RawMessage           `json:"additionalProperties"`
	Items                *openAPISchema            `json:"items"`
	Required             []string                  `json:"required"`
	Enum                 []any                     `json:"enum"`
	Pattern              string                    `json:"pattern"`
	MinLength            *int                      `json:"minLength"`
	MaxLength            *int                      `json:"maxLength"`
	MinItems             *int                      `json:"minItems"`
	MaxItems             *int                      `json:"maxItems"`
	MaxProperties        *int                      `json:"maxProperties"`
	Minimum              *float64                  `json:"minimum"`
	Maximum              *float64                  `json:"maximum"`
	Nullable             bool                      `json:"nullable"`
	OneOf                []*openAPISchema          `json:"oneOf"`
	AnyOf                []*openAPISchema          `json:"anyOf"`
	AllOf                []*openAPISchema          `json:"allOf"`
	Not                  *openAPISchema            `json:"not"`
	PreserveUnknown      bool                      `json:"x-kubernetes-preserve-unknown-fields"`
	IntOrString          bool                      `json:"x-kubernetes-int-or-string"`
}

// crd is one served version of a custom resource.
type crd struct {
	schema *openAPISchema
}

// istioCRDs reads the CustomResourceDefinitions that istio.io/api ships (the ones Istio
// installs), keyed by "group/version Kind".
var istioCRDs = sync.OnceValues(func() (map[string]crd, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		return nil, fmt.Errorf("locate istio.io/api: %w", err)
	}
	text, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		return nil, err
	}
	crds := map[string]crd{}
	for _, doc := range splitYAML(text) {
		var def struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema *openAPISchema `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &def); err != nil {
			return nil, fmt.Errorf("istio CRDs: %w", err)
		}
		for _, v := range def.Spec.Versions {
			if v.Served {
				crds[def.Spec.Group+"/"+v.Name+" "+def.Spec.Names.Kind] = crd{schema: v.Schema.OpenAPIV3Schema}
			}
		}
	}
	return crds, nil
})

// splitYAML cuts a multi-document YAML file into its documents.
func splitYAML(text []byte) [][]byte {
	var docs [][]byte
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(text), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) != "" {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

// validate checks v (decoded JSON) against s as the Kubernetes API server would, but for
// CEL rules (x-kubernetes-validations), which need a CEL interpreter. Unknown fields are
// errors, as with kubectl's strict field validation.
func (s *openAPISchema) validate(v any, path string) []string {
	if s == nil {
		return nil
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, path+": "+fmt.Sprintf(format, args...)) }
	if v == nil {
		if !s.Nullable && s.Type != "" {
			fail("null is not allowed")
		}
		return problems
	}
	for _, sub := range s.AllOf {
		problems = append(problems, sub.validate(v, path)...)
	}
	if len(s.AnyOf) > 0 && !slices.ContainsFunc(s.AnyOf, func(sub *openAPISchema) bool { return len(sub.validate(v, path)) == 0 }) {
		fail("matches none of anyOf")
	}
	if len(s.OneOf) > 0 {
		n := 0
		for _, sub := range s.OneOf {
			if len(sub.validate(v, path)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of oneOf, want exactly 1 (fields that exclude each other?)", n)
		}
	}
	if s.Not != nil && len(s.Not.validate(v, path)) == 0 {
		fail("matches a schema it must not")
	}
	if len(s.Enum) > 0 && !slices.ContainsFunc(s.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		fail("%v is not one of %v", v, s.Enum)
	}
	switch x := v.(type) {
	case map[string]any:
		if s.Type != "" && s.Type != "object" {
			fail("is an object, want %s", s.Type)
			break
		}
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				fail("%s is required", r)
			}
		}
		if s.MaxProperties != nil && len(x) > *s.MaxProperties {
			fail("more than %d properties", *s.MaxProperties)
		}
		var extra *openAPISchema
		allowExtra := s.PreserveUnknown
		if len(s.AdditionalProperties) > 0 {
			if string(s.AdditionalProperties) == "true" {
				allowExtra = true
			} else if string(s.AdditionalProperties) != "false" {
				extra = &openAPISchema{}
				if err := json.Unmarshal(s.AdditionalProperties, extra); err != nil {
					fail("schema: %v", err)
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch prop, ok := s.Properties[k]; {
			case ok:
				problems = append(problems, prop.validate(x[k], path+"."+k)...)
			case extra != nil:
				problems = append(problems, extra.validate(x[k], path+"."+k)...)
			case !allowExtra && s.Type == "object":
				fail("unknown field %q", k)
			}
		}
	case []any:
		if s.Type != "" && s.Type != "array" {
			fail("is a list, want %s", s.Type)
			break
		}
		if s.MaxItems != nil && len(x) > *s.MaxItems {
			fail("more than %d items", *s.MaxItems)
		}
		if s.MinItems != nil && len(x) < *s.MinItems {
			fail("fewer than %d items", *s.MinItems)
		}
		for i, item := range x {
			problems = append(problems, s.Items.validate(item, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case string:
		if s.Type != "" && s.Type != "string" && !s.IntOrString {
			fail("is a string, want %s", s.Type)
			break
		}
		if s.MinLength != nil && len([]rune(x)) < *s.MinLength {
			fail("shorter than %d", *s.MinLength)
		}
		if s.MaxLength != nil && len([]rune(x)) > *s.MaxLength {
			fail("longer than %d", *s.MaxLength)
		}
		if s.Pattern != "" {
			if re, err := regexp.Compile(s.Pattern); err == nil && !re.MatchString(x) {
				fail("%q does not match %s", x, s.Pattern)
			}
		}
	case float64:
		switch {
		case s.Type == "integer" && x != math.Trunc(x):
			fail("%v is not an integer", x)
		case s.Type != "" && s.Type != "integer" && s.Type != "number" && !s.IntOrString:
			fail("is a number, want %s", s.Type)
		}
		if s.Minimum != nil && x < *s.Minimum {
			fail("%v is below %v", x, *s.Minimum)
		}
		if s.Maximum != nil && x > *s.Maximum {
			fail("%v is above %v", x, *s.Maximum)
		}
	case bool:
		if s.Type != "" && s.Type != "boolean" {
			fail("is a boolean, want %s", s.Type)
		}
	}
	return problems
}
