package xssec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

func (v *validator) scopes(d map[string]any) map[string]bool {
	names := map[string]bool{}
	items, ok := v.array(d, "scopes", "$.scopes")
	if !ok {
		return names
	}
	if len(items) > MaxScopes {
		v.Errf("$.scopes", "has %d scopes, at most %d are allowed", len(items), MaxScopes)
	}
	for i, it := range items {
		p := fmt.Sprintf("$.scopes[%d]", i)
		obj, ok := it.(map[string]any)
		if !ok {
			v.Errf(p, "must be an object")
			continue
		}
		v.Only(obj, p, "name", "description", "granted-apps", "grant-as-authority-to-apps")
		name, _ := obj["name"].(string)
		switch {
		case name == "":
			v.Errf(p+".name", "is required")
			continue
		case !strings.HasPrefix(name, "$XSAPPNAME."):
			// the documented form, but the real broker accepts others (a scope
			// "uaa.user" was recorded as accepted): warn, do not refuse
			v.Warnf(p+".name", "%q does not start with $XSAPPNAME. (the documented form for an application's own scopes)", name)
		default:
			rest := strings.TrimPrefix(name, "$XSAPPNAME.")
			if rest == "" || strings.HasPrefix(rest, ".") || !reScopeRest.MatchString(rest) {
				v.Errf(p+".name", "%q: after $XSAPPNAME. a scope name takes letters, digits and _ - / \\ : . and must not start with '.'", name)
			}
			if len(rest)+1+MaxXSAppName > MaxScopeName && len(name) > MaxScopeName {
				v.Errf(p+".name", "%q is longer than %d characters", name, MaxScopeName)
			}
		}
		if names[name] {
			v.Relf(p+".name", "duplicate scope %q", name)
		}
		names[name] = true
		for _, f := range []string{"granted-apps", "grant-as-authority-to-apps"} {
			apps, ok := v.array(obj, f, p+"."+f)
			if !ok {
				continue
			}
			for j, a := range apps {
				s, _ := a.(string)
				if !reForeignApp.MatchString(s) && !reServiceName.MatchString(s) {
					v.Errf(fmt.Sprintf("%s.%s[%d]", p, f, j), "%s is not of the form $XSAPPNAME(application,<xsappname>) or $XSSERVICENAME(<instance>)", Text(a))
				}
			}
		}
	}
	return names
}

func (v *validator) attributes(d map[string]any) map[string]bool {
	names := map[string]bool{}
	items, ok := v.array(d, "attributes", "$.attributes")
	if !ok {
		return names
	}
	if len(items) > MaxAttributes {
		v.Errf("$.attributes", "has %d attributes, at most %d are allowed", len(items), MaxAttributes)
	}
	for i, it := range items {
		p := fmt.Sprintf("$.attributes[%d]", i)
		obj, ok := it.(map[string]any)
		if !ok {
			v.Errf(p, "must be an object")
			continue
		}
		v.Only(obj, p, "name", "description", "valueType", "valueRequired")
		name, _ := obj["name"].(string)
		switch {
		case name == "":
			v.Errf(p+".name", "is required")
		case len(name) > MaxNameLen || !reAttrName.MatchString(name):
			v.Errf(p+".name", "%q must be at most %d letters, digits or '_'", name, MaxNameLen)
		}
		if names[name] && name != "" {
			v.Relf(p+".name", "duplicate attribute %q", name)
		}
		names[name] = true
		vt, has := obj["valueType"]
		if !has {
			v.Errf(p+".valueType", "is required")
		} else if s, _ := vt.(string); !slices.Contains(valueTypes, s) {
			v.Errf(p+".valueType", "%s is not one of string, s, int, date", Text(vt))
		}
		if vr, has := obj["valueRequired"]; has {
			if _, isBool := vr.(bool); !isBool {
				v.Errf(p+".valueRequired", "must be true or false")
			}
		}
	}
	return names
}

func (v *validator) roleTemplates(d map[string]any, scopes, attrs map[string]bool) map[string]bool {
	names := map[string]bool{}
	items, ok := v.array(d, "role-templates", "$.role-templates")
	if !ok {
		return names
	}
	if len(items) > MaxRoleTemplates {
		v.Errf("$.role-templates", "has %d role templates, at most %d are allowed", len(items), MaxRoleTemplates)
	}
	for i, it := range items {
		p := fmt.Sprintf("$.role-templates[%d]", i)
		obj, ok := it.(map[string]any)
		if !ok {
			v.Errf(p, "must be an object")
			continue
		}
		v.Only(obj, p, "name", "description", "default-role-name", "scope-references", "attribute-references")
		name, _ := obj["name"].(string)
		switch {
		case name == "":
			v.Errf(p+".name", "is required")
		case len(name) > MaxNameLen || !reRoleTemplate.MatchString(name):
			v.Errf(p+".name", "%q must be at most %d letters, digits or . _ -", name, MaxNameLen)
		}
		if names[name] && name != "" {
			v.Relf(p+".name", "duplicate role template %q", name)
		}
		names[name] = true
		if drn, has := obj["default-role-name"]; has {
			if s, isStr := drn.(string); !isStr || utf8.RuneCountInString(s) > MaxDefaultRoleName {
				v.Errf(p+".default-role-name", "must be a string of at most %d characters", MaxDefaultRoleName)
			}
		}
		refs, _ := v.array(obj, "scope-references", p+".scope-references")
		for j, r := range refs {
			s, _ := r.(string)
			rp := fmt.Sprintf("%s.scope-references[%d]", p, j)
			switch {
			case strings.HasPrefix(s, "$XSAPPNAME."):
				if !scopes[s] {
					v.Relf(rp, "references scope %q, which is not defined in scopes", s)
				}
			case reForeignScope.MatchString(s), s == "uaa.user":
			default:
				v.Errf(rp, "%s is neither a scope defined in scopes nor a foreign scope reference", Text(r))
			}
		}
		arefs, _ := v.array(obj, "attribute-references", p+".attribute-references")
		for j, r := range arefs {
			rp := fmt.Sprintf("%s.attribute-references[%d]", p, j)
			var an string
			switch x := r.(type) {
			case string:
				an = x
			case map[string]any:
				v.Only(x, rp, "name", "default-values", "value-required")
				an, _ = x["name"].(string)
				if dv, has := x["default-values"]; has {
					if _, isArr := dv.([]any); !isArr {
						v.Errf(rp+".default-values", "must be an array")
					}
				}
			default:
				v.Errf(rp, "must be an attribute name or an object with name")
				continue
			}
			if !attrs[an] {
				v.Relf(rp, "references attribute %q, which is not defined in attributes", an)
			}
		}
	}
	return names
}

func (v *validator) roleCollections(d map[string]any, roleTemplates map[string]bool) {
	items, ok := v.array(d, "role-collections", "$.role-collections")
	if !ok {
		return
	}
	if len(items) > MaxRoleCollections {
		v.Errf("$.role-collections", "has %d role collections, at most %d are allowed", len(items), MaxRoleCollections)
	}
	seen := map[string]bool{}
	for i, it := range items {
		p := fmt.Sprintf("$.role-collections[%d]", i)
		obj, ok := it.(map[string]any)
		if !ok {
			v.Errf(p, "must be an object")
			continue
		}
		v.Only(obj, p, "name", "description", "role-template-references")
		name, _ := obj["name"].(string)
		switch {
		case name == "":
			v.Errf(p+".name", "is required")
		case utf8.RuneCountInString(name) > MaxNameLen:
			v.Errf(p+".name", "%q is longer than %d characters", name, MaxNameLen)
		}
		if seen[name] && name != "" {
			v.Relf(p+".name", "duplicate role collection %q", name)
		}
		seen[name] = true
		if desc, has := obj["description"]; has {
			if s, isStr := desc.(string); !isStr || utf8.RuneCountInString(s) > MaxDescription {
				v.Errf(p+".description", "must be a string of at most %d characters", MaxDescription)
			}
		}
		refs, has := v.array(obj, "role-template-references", p+".role-template-references")
		if !has {
			if _, present := obj["role-template-references"]; !present {
				v.Errf(p+".role-template-references", "is required")
			}
			continue
		}
		for j, r := range refs {
			s, _ := r.(string)
			rp := fmt.Sprintf("%s.role-template-references[%d]", p, j)
			m := reRoleTmplRef.FindStringSubmatch(s)
			switch {
			case m == nil:
				v.Errf(rp, "%s is not of the form $XSAPPNAME.<role-template>", Text(r))
			case m[1] == "" && !roleTemplates[m[2]]:
				v.Relf(rp, "references role template %q, which is not defined in role-templates", m[2])
			}
		}
	}
}

// refList validates foreign-scope-references and authorities.
func (v *validator) refList(d map[string]any, field, accept string, max int) {
	p := "$." + field
	items, ok := v.array(d, field, p)
	if !ok {
		return
	}
	if len(items) > max {
		v.Errf(p, "has %d entries, at most %d are allowed", len(items), max)
	}
	for i, it := range items {
		s, _ := it.(string)
		ip := fmt.Sprintf("%s[%d]", p, i)
		if s == accept {
			continue
		}
		m := reForeignScope.FindStringSubmatch(s)
		if m == nil {
			if _, isStr := it.(string); !isStr || strings.HasPrefix(s, "$XSAPPNAME(") {
				// not a string, or a malformed reference: certain
				v.Errf(ip, "%s is not %s or of the form $XSAPPNAME(application,<xsappname>).<scope>", Text(it), accept)
				continue
			}
			// the real broker accepts more than the documented forms
			// (["user_attributes"] was recorded as accepted): warn
			v.Warnf(ip, "%s is not %s or of the form $XSAPPNAME(application,<xsappname>).<scope>", Text(it), accept)
			continue
		}
		if m[1] != "application" {
			v.Errf(ip, "%q refers to plan %q; only application is allowed", s, m[1])
		}
	}
}

func (v *validator) oauth2(d map[string]any) {
	p := "$.oauth2-configuration"
	obj, ok := v.Object(d, "oauth2-configuration", p)
	if !ok {
		return
	}
	v.Only(obj, p, slices.Collect(maps.Keys(oauth2Fields))...)
	v.intRange(obj, "token-validity", p, MinTokenValidity, MaxTokenValidity)
	v.intRange(obj, "refresh-token-validity", p, MinTokenValidity, MaxRefreshValidity)
	if uris, ok := v.array(obj, "redirect-uris", p+".redirect-uris"); ok {
		for i, u := range uris {
			s, _ := u.(string)
			up := fmt.Sprintf("%s.redirect-uris[%d]", p, i)
			switch {
			case s == "":
				v.Errf(up, "must be a non-empty string")
			case !strings.Contains(s, "://"):
				v.Errf(up, "%q is not an absolute URI", s)
			case strings.Contains(s, "://*/") || strings.HasSuffix(s, "://*") || strings.HasPrefix(s, "*"):
				v.Warnf(up, "%q accepts any host; restrict it to your landscape's domain", s)
			case strings.Contains(s, "*"):
				v.Warnf(up, "%q contains a wildcard; make sure it cannot match hosts you do not control", s)
			}
		}
	}
	if cts, ok := v.array(obj, "credential-types", p+".credential-types"); ok {
		if len(cts) == 0 {
			v.Errf(p+".credential-types", "must list at least one credential type")
		}
		for i, c := range cts {
			s, _ := c.(string)
			if !slices.Contains(credentialTypes, s) {
				v.Errf(fmt.Sprintf("%s.credential-types[%d]", p, i), "%s is not one of binding-secret, x509, instance-secret", Text(c))
			} else if s == "instance-secret" {
				v.Warnf(fmt.Sprintf("%s.credential-types[%d]", p, i), "instance-secret is deprecated and refused for new keys")
			}
		}
	}
}

func (v *validator) intRange(obj map[string]any, field, parent string, lo, hi int64) {
	p := parent + "." + field
	f, n, ok := v.WholeNumber(obj, field, p)
	if ok && (f < float64(lo) || f > float64(hi)) {
		v.Errf(p, "%s is outside the allowed range %d..%d seconds", n, lo, hi)
	}
}

// array returns obj[field] as an array; a present non-array is an error.
func (v *validator) array(obj map[string]any, field, p string) ([]any, bool) {
	raw, ok := obj[field]
	if ok && raw == nil {
		// the broker rejects these as null, after the instance exists
		if nullRefused[field] {
			v.Errf(p, "must be an array, not null (the broker rejects null here)")
		} else {
			v.Warnf(p, "is null; leave the field out instead")
		}
		return nil, false
	}
	return v.Array(obj, field, p)
}

// nullRefused are the arrays the broker rejects as null.
var nullRefused = map[string]bool{"credential-types": true, "redirect-uris": true, "scope-references": true}
