package recorder

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDirName(t *testing.T) {
	tests := []struct {
		name       string
		id         string
		asIs       bool   // the id is its own folder name
		wantPrefix string // for mapped ids, the readable part before "--"
	}{
		{"twilio call sid", "CA1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f", true, ""},
		{"uuid", "32de0dea-53cb-11ef-a6fe-02420aef00a7", true, ""},
		{"dots and underscores inside", "call_1.2-x", true, ""},
		{"128 characters", strings.Repeat("a", 128), true, ""},
		{"parent directory", "../x", false, "_x"},
		{"dot dot alone", "..", false, "call"},
		{"dot alone", ".", false, "call"},
		{"leading dot", ".hidden", false, "hidden"},
		{"leading dots then slash", "../../etc", false, "_.._etc"},
		{"slash", "a/b", false, "a_b"},
		{"absolute path", "/etc/passwd", false, "_etc_passwd"},
		{"backslash", `a\b`, false, "a_b"},
		{"NUL byte", "a\x00b", false, "a_b"},
		{"telnyx call control id", "v3:abc-123", false, "v3_abc-123"},
		{"space", "my call", false, "my_call"},
		{"unicode", "appel-é-ü", false, "appel-_-_"},
		{"emoji only", "📞", false, "_"},
		{"empty", "", false, "call"},
		{"129 characters", strings.Repeat("a", 129), false, strings.Repeat("a", 64)},
		{"10 KB", strings.Repeat("x/", 5000), false, strings.Repeat("x_", 32)},
		{"safe but shaped like a mapped name", "a--0123456789abcdef0123456789abcdef", false, "a--0123456789abcdef0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dirName(tt.id)
			requireSafeDirName(t, got)
			require.Equal(t, got, dirName(tt.id), "deterministic")
			if tt.asIs {
				require.Equal(t, tt.id, got)
				return
			}
			require.NotEqual(t, tt.id, got)
			require.True(t, looksHashed(got), "mapped names carry the hash: %q", got)
			require.Equal(t, tt.wantPrefix, strings.TrimSuffix(got, got[len(got)-hashedSuffix:]))
		})
	}
}

func requireSafeDirName(t testing.TB, name string) {
	t.Helper()
	require.True(t, isSafeName(name), "unsafe folder name %q", name)
	require.NotContains(t, name, "/")
	require.NotContains(t, name, `\`)
	require.False(t, strings.HasPrefix(name, "."), "leading dot in %q", name)
	require.LessOrEqual(t, len(name), 128)
	root := filepath.FromSlash("/data/calls")
	require.Equal(t, root, filepath.Dir(filepath.Join(root, name)), "%q escapes its parent", name)
}

// TestDirNameDistinct maps many unsafe ids that sanitise to the same prefix
// (and a safe id shaped like one of their names) and checks none collide.
func TestDirNameDistinct(t *testing.T) {
	ids := []string{"a/b", "a\\b", "a:b", "a b", "a\x00b", "a//b", "a/b/", "/a/b", "a?b", "aéb"}
	for i := range 200 {
		ids = append(ids, fmt.Sprintf("call/%d", i), fmt.Sprintf("call:%d", i))
	}
	// A caller picking the mapped name of another id as its own id must not
	// land in that id's folder.
	ids = append(ids, dirName("a/b"))

	seen := make(map[string]string, len(ids))
	for _, id := range ids {
		name := dirName(id)
		if prev, ok := seen[name]; ok {
			t.Fatalf("ids %q and %q both map to %q", prev, id, name)
		}
		seen[name] = id
	}
}

func FuzzDirName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "../x", "a/b", "CA123", "a--0123456789abcdef0123456789abcdef", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name := dirName(id)
		if !isSafeName(name) || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
			t.Fatalf("dirName(%q) = %q is not a safe name", id, name)
		}
		if filepath.Dir(filepath.Join("/data/calls", name)) != filepath.FromSlash("/data/calls") {
			t.Fatalf("dirName(%q) = %q escapes the calls folder", id, name)
		}
		if name != dirName(id) {
			t.Fatalf("dirName(%q) is not deterministic", id)
		}
		if isSafeName(id) && !looksHashed(id) && name != id {
			t.Fatalf("safe id %q mapped to %q", id, name)
		}
		if (!isSafeName(id) || looksHashed(id)) && !looksHashed(name) {
			t.Fatalf("mapped id %q got %q without a hash", id, name)
		}
	})
}

func TestFolderNameIsTheFolder(t *testing.T) {
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"CA123", "../x y", "a--0123456789abcdef0123456789abcdef", ""} {
		name := FolderName(id)
		if got := filepath.Base(s.Dir(id)); got != name {
			t.Errorf("FolderName(%q) = %q, folder %q", id, name, got)
		}
		if !IsFolderName(name) {
			t.Errorf("FolderName(%q) = %q is not a folder name", id, name)
		}
	}
	if IsFolderName("../x") || IsFolderName(".hidden") {
		t.Error("IsFolderName accepts an unsafe name")
	}
}
