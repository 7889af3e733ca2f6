package config

// Lists of mappings (mail.smtp.relays): in the file, a YAML list whose items are
// mappings of the element's keys or its one-line form; in the environment, the
// one-line forms comma-separated, and a numbered variable per element key.

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// isList reports whether v is a list of mappings (a slice of structs).
func isList(v reflect.Value) bool {
	return v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct
}

// defaulter is a list element with defaults of its own.
type defaulter interface{ setDefaults() }

// newElement is a new element of a list of mappings, with its defaults.
func newElement(t reflect.Type) reflect.Value {
	v := reflect.New(t)
	if d, ok := v.Interface().(defaulter); ok {
		d.setDefaults()
	}
	return v.Elem()
}

// setText sets a list element from its one-line form (a relay's URL).
func setText(v reflect.Value, s string) error {
	u, ok := v.Addr().Interface().(encoding.TextUnmarshaler)
	if !ok {
		return errors.New("expected a mapping of keys")
	}
	return u.UnmarshalText([]byte(s))
}

// walkList sets the list of mappings v from n: each item a mapping of the
// element's keys, or its one-line form (a relay's URL).
func (d decoder) walkList(n *yaml.Node, v reflect.Value, path string, errs *Errors) {
	at := func(n *yaml.Node) string { return fmt.Sprintf("%s:%d", d.file, n.Line) }
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		*errs = append(*errs, &Error{Key: path, Source: at(n), Msg: "expected a list"})
		return
	}
	list := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		el := newElement(v.Type().Elem())
		ipath := fmt.Sprintf("%s[%d]", path, i)
		d.cfg.sources[ipath] = at(item)
		switch item.Kind {
		case yaml.MappingNode:
			d.walk(item, el, ipath, errs)
		case yaml.ScalarNode:
			if err := setText(el, item.Value); err != nil {
				*errs = append(*errs, &Error{Key: ipath, Source: at(item), Msg: err.Error()})
			}
		default:
			*errs = append(*errs, &Error{Key: ipath, Source: at(item), Msg: "expected a mapping of keys"})
		}
		list = reflect.Append(list, el)
	}
	v.Set(list)
}

// applyListEnv sets a list of mappings from the environment: the whole list
// from its variable, as comma-separated one-line forms (relay URLs), then any
// element's key from its numbered variable (PUBLISHER_MAIL_SMTP_RELAYS_0_PASSWORD),
// which may also add the next element.
func applyListEnv(env map[string]string, known map[string]bool, l leaf, src map[string]string) Errors {
	var errs Errors
	name := EnvName(l.path)
	elem := l.field.Type().Elem()
	if val, ok := env[name]; ok {
		// The environment's list replaces the file's, lines and all.
		for k := range src {
			if strings.HasPrefix(k, l.path+"[") {
				delete(src, k)
			}
		}
		src[l.path] = name
		items := strings.FieldsFunc(val, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		list := reflect.MakeSlice(l.field.Type(), 0, len(items))
		for i, item := range items {
			el := newElement(elem)
			ipath := fmt.Sprintf("%s[%d]", l.path, i)
			src[ipath] = name
			if err := setText(el, item); err != nil {
				errs = append(errs, &Error{Key: ipath, Source: name, Msg: err.Error()})
			}
			list = reflect.Append(list, el)
		}
		l.field.Set(list)
	}
	type setting struct {
		index      int
		name, path string
		field      int
	}
	var sets []setting
	for varName := range env {
		rest, ok := strings.CutPrefix(varName, name+"_")
		if !ok {
			continue
		}
		num, key, _ := strings.Cut(rest, "_")
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 || strconv.Itoa(i) != num {
			continue // not ours: reported as unknown
		}
		for f := 0; f < elem.NumField(); f++ {
			tag := strings.Split(elem.Field(f).Tag.Get("yaml"), ",")[0]
			if elem.Field(f).IsExported() && strings.ToUpper(tag) == key {
				sets = append(sets, setting{index: i, name: varName, path: fmt.Sprintf("%s[%d].%s", l.path, i, tag), field: f})
			}
		}
	}
	slices.SortFunc(sets, func(a, b setting) int {
		return cmp.Or(cmp.Compare(a.index, b.index), cmp.Compare(a.name, b.name))
	})
	for _, s := range sets {
		known[s.name] = true
		if s.index > l.field.Len() {
			errs = append(errs, &Error{Key: s.path, Source: s.name,
				Msg: fmt.Sprintf("%s has %d elements, numbered from 0; add them in order", l.path, l.field.Len())})
			continue
		}
		if s.index == l.field.Len() {
			l.field.Set(reflect.Append(l.field, newElement(elem)))
			src[fmt.Sprintf("%s[%d]", l.path, s.index)] = s.name
		}
		src[s.path] = s.name
		if err := setScalar(l.field.Index(s.index).Field(s.field), env[s.name]); err != nil {
			errs = append(errs, &Error{Key: s.path, Source: s.name, Msg: err.Error()})
		}
	}
	return errs
}
