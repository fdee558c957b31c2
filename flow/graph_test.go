package flow

import (
	"errors"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/config"
)

func TestGroupsOverage(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"groups":["g"]}`: false,
		`{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://evil.example/steal"}}}`: true,
		`{"hasgroups":true}`:                true,
		`{"_claim_names":{"other":"src1"}}`: false,
	} {
		if got := GroupsOverage(claimsOf(t, raw)); got != want {
			t.Errorf("%s: %v", raw, got)
		}
	}
}

func TestGraphGroupsRequest(t *testing.T) {
	f, _ := newFlow(t, "")
	if _, err := f.GraphGroupsRequest("at"); !errors.Is(err, ErrGroupsUnavailable) || !strings.Contains(err.Error(), "graph_cluster") {
		t.Errorf("without graph_cluster: %v", err)
	}
	f, _ = newFlow(t, `,"graph_cluster":"graph"`)
	r, err := f.GraphGroupsRequest("at-1")
	if err != nil {
		t.Fatal(err)
	}
	pairs := map[string]string{}
	for _, p := range r.Pairs() {
		pairs[p[0]] = p[1]
	}
	if pairs[":method"] != "POST" || pairs[":path"] != "/v1.0/me/getMemberObjects" || pairs[":authority"] != "graph.microsoft.com" ||
		pairs["authorization"] != "Bearer at-1" || string(r.Body) != `{"securityEnabledOnly":true}` {
		t.Errorf("request %v %s", pairs, r.Body)
	}
	if _, err := config.Parse([]byte(strings.TrimSuffix(minimal, "}")+`,"graph_url":"https://graph.microsoft.com/v1.0"}`), noEnv); err == nil {
		t.Error("a graph_url with a path was accepted")
	}
}

func TestParseGraphGroups(t *testing.T) {
	if g, err := ParseGraphGroups(200, []byte(`{"value":["g1","g2",3]}`)); err != nil || strings.Join(g, ",") != "g1,g2" {
		t.Errorf("%v %v", g, err)
	}
	if g, err := ParseGraphGroups(200, []byte(`{"value":[]}`)); err != nil || g == nil || len(g) != 0 {
		t.Errorf("no groups must be an empty list, not unknown: %v %v", g, err)
	}
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{403, `{"error":{"code":"Authorization_RequestDenied"}}`, "GroupMember.Read.All"},
		{401, `{"error":{"code":"InvalidAuthenticationToken"}}`, "InvalidAuthenticationToken"},
		{0, ``, "did not answer"},
		{500, `oops`, "answered 500"},
		{200, `{"value":"x"}`, "answered 200"},
	} {
		if _, err := ParseGraphGroups(tc.status, []byte(tc.body)); !errors.Is(err, ErrGroupsUnavailable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d %s: %v", tc.status, tc.body, err)
		}
	}
}
