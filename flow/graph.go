package flow

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/jwks"
)

// Groups overage: a user in more groups than a token can carry (200 in a JWT) gets a
// token without "groups" that names, in _claim_names and _claim_sources, where to find
// them. The filter then asks Microsoft Graph itself, through graph_cluster, with the
// user's access token; it never calls the URL the token names.

// GroupsOverage reports whether the token left its groups out for being too many.
func GroupsOverage(c *jwks.Claims) bool {
	return c.Get(`_claim_names.groups`).Exists() || c.Get("hasgroups").Bool()
}

// GraphGroupsRequest asks Microsoft Graph for the signed-in user's security groups,
// transitive memberships included (getMemberObjects), with the user's access token for
// Graph.
func (f *Flow) GraphGroupsRequest(accessToken string) (*HTTPRequest, error) {
	if f.cfg.GraphCluster == "" {
		return nil, fmt.Errorf("%w: the token left the groups out (more than it can carry) and graph_cluster is not set: define a cluster for %s and name it in graph_cluster",
			ErrGroupsUnavailable, f.cfg.GraphURL)
	}
	if accessToken == "" {
		return nil, fmt.Errorf("%w: no access token to ask Microsoft Graph with", ErrGroupsUnavailable)
	}
	r, err := requestTo("POST", f.cfg.GraphURL+"/v1.0/me/getMemberObjects")
	if err != nil {
		return nil, err
	}
	r.Body = []byte(`{"securityEnabledOnly":true}`)
	r.Headers = append(r.Headers,
		[2]string{"authorization", "Bearer " + accessToken},
		[2]string{"content-type", "application/json"},
		[2]string{"content-length", strconv.Itoa(len(r.Body))})
	return r, nil
}

// ParseGraphGroups reads getMemberObjects' answer: the group ids, or ErrGroupsUnavailable
// saying why (a 401 or 403 is mostly missing consent or a token for another resource).
func ParseGraphGroups(status int, body []byte) ([]string, error) {
	switch {
	case status == 200 && len(body) <= maxIdPBody && gjson.ValidBytes(body) && gjson.GetBytes(body, "value").IsArray():
		groups := []string{}
		for _, g := range gjson.GetBytes(body, "value").Array() {
			if g.Type == gjson.String {
				groups = append(groups, g.String())
			}
		}
		return groups, nil
	case status == 401 || status == 403:
		return nil, fmt.Errorf("%w: Microsoft Graph answered %d (%s): the app registration needs the delegated permission GroupMember.Read.All with consent, and the session's access token must be for Graph (no other resource among scopes)",
			ErrGroupsUnavailable, status, gjson.GetBytes(body, "error.code").String())
	case status == 0:
		return nil, fmt.Errorf("%w: Microsoft Graph did not answer (graph_cluster)", ErrGroupsUnavailable)
	}
	return nil, fmt.Errorf("%w: Microsoft Graph answered %d: %s", ErrGroupsUnavailable, status, snippet(body))
}
