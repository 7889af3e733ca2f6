package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The deployment files, read as Kubernetes and Compose would, and their pods'
// environment given to the built binary: every variable must be one it
// accepts, and every setting one that works.

// k8sDoc is the part of a manifest these tests read.
type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas    int     `yaml:"replicas"`
		Template    podTmpl `yaml:"template"`
		JobTemplate struct {
			Spec struct {
				BackoffLimit *int    `yaml:"backoffLimit"`
				Template     podTmpl `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
		Ports []struct {
			Name string `yaml:"name"`
			Port int    `yaml:"port"`
		} `yaml:"ports"`
		AccessModes []string `yaml:"accessModes"`
	} `yaml:"spec"`
}

type podTmpl struct {
	Spec podSpec `yaml:"spec"`
}

type podSpec struct {
	EnableServiceLinks            *bool       `yaml:"enableServiceLinks"`
	AutomountServiceAccountToken  *bool       `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
	Affinity                      yaml.Node   `yaml:"affinity"`
	Containers                    []container `yaml:"containers"`
	Volumes                       []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
		PVC *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
		EmptyDir *yaml.Node `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type container struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []yaml.Node `yaml:"envFrom"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// renderKustomization reads the resources a kustomization lists (none of ours
// patches anything, so that is what kubectl kustomize renders).
func renderKustomization(t *testing.T, dir string) []k8sDoc {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	var docs []k8sDoc
	for _, r := range k.Resources {
		docs = append(docs, readDocs(t, filepath.Join(dir, r))...)
	}
	return docs
}

func readDocs(t *testing.T, path string) []k8sDoc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []k8sDoc
	dec := yaml.NewDecoder(f)
	for {
		var d k8sDoc
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

// secretValues are what an operator puts in the Secret (create it as
// secret.example.yaml says).
var secretValues = map[string]string{
	"secret":        "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b",
	"smtp-password": "the-relay-password",
	"dsn":           "postgres://publisher:pw@postgres.db:5432/publisher?sslmode=verify-full",
}

// podEnv lays out a pod's mounts under root (the ConfigMap's files, the
// Secret's keys) and returns its container's environment with the mount paths
// moved there, as the container would see it.
func podEnv(t *testing.T, root string, docs []k8sDoc, spec podSpec, c container, secrets map[string]string) []string {
	t.Helper()
	configMaps := map[string]map[string]string{}
	for _, d := range docs {
		if d.Kind == "ConfigMap" {
			configMaps[d.Metadata.Name] = d.Data
		}
	}
	mounts := map[string]string{} // mount path -> folder under root
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, filepath.FromSlash(m.MountPath))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		mounts[m.MountPath] = dir
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			files := map[string]string{}
			switch {
			case v.ConfigMap != nil:
				files = configMaps[v.ConfigMap.Name]
				if files == nil {
					t.Fatalf("volume %s: no ConfigMap %s among the resources", v.Name, v.ConfigMap.Name)
				}
			case v.Secret != nil:
				files = secrets
			}
			for name, body := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Errorf("envFrom puts secrets in the environment; mount them and use PUBLISHER_*_FILE")
	}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		for mp, dir := range mounts {
			if strings.HasPrefix(e.Value, mp+"/") {
				v = dir + strings.TrimPrefix(e.Value, mp)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// serviceLinks are the variables Kubernetes puts into every pod for each
// Service when enableServiceLinks is left on.
func serviceLinks(docs []k8sDoc) []string {
	var out []string
	for _, d := range docs {
		if d.Kind != "Service" {
			continue
		}
		prefix := strings.ToUpper(strings.ReplaceAll(d.Metadata.Name, "-", "_"))
		out = append(out, prefix+"_SERVICE_HOST=10.96.0.10")
		for i, p := range d.Spec.Ports {
			port := strconv.Itoa(p.Port)
			if i == 0 {
				out = append(out, prefix+"_SERVICE_PORT="+port, prefix+"_PORT=tcp://10.96.0.10:"+port)
			}
			if p.Name != "" {
				out = append(out, prefix+"_SERVICE_PORT_"+strings.ToUpper(p.Name)+"="+port)
			}
			pt := prefix + "_PORT_" + port + "_TCP"
			out = append(out, pt+"=tcp://10.96.0.10:"+port, pt+"_PROTO=tcp", pt+"_PORT="+port, pt+"_ADDR=10.96.0.10")
		}
	}
	return out
}

// effective runs publisher config --effective in env and returns its settings.
func effective(t *testing.T, dir string, env []string) (map[string]string, result) {
	t.Helper()
	d := &desk{t: t, dir: dir, env: env}
	r := d.run("config", "--effective")
	settings := map[string]string{}
	line := regexp.MustCompile(`^(\S+) = "(.*)"  # `)
	for _, l := range strings.Split(r.stdout, "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			settings[m[1]] = m[2]
		}
	}
	return settings, r
}

func TestKubernetesManifestsAgainstTheBinary(t *testing.T) {
	root := repoRoot(t)
	example := readDocs(t, filepath.Join(root, "deploy", "kubernetes", "secret.example.yaml"))
	for _, variant := range []string{"kubernetes", "kubernetes/postgres"} {
		t.Run(variant, func(t *testing.T) {
			docs := renderKustomization(t, filepath.Join(root, "deploy", filepath.FromSlash(variant)))
			pods := 0
			for _, d := range docs {
				switch d.Kind {
				case "Secret":
					t.Errorf("the kustomization applies Secret %s: applying it again would put its placeholders over the real values", d.Metadata.Name)
				case "PersistentVolumeClaim":
					if d.Metadata.Name == "publisher-data" && variant != "kubernetes" {
						t.Errorf("%s: a shared data volume on PostgreSQL", variant)
					}
				}
				spec, isJob := d.Spec.Template.Spec, false
				switch d.Kind {
				case "Deployment":
				case "CronJob":
					spec, isJob = d.Spec.JobTemplate.Spec.Template.Spec, true
					if bl := d.Spec.JobTemplate.Spec.BackoffLimit; bl == nil || *bl != 0 {
						t.Errorf("CronJob %s: backoffLimit must be 0 (a failed run is resumed by the next, not retried by a new pod)", d.Metadata.Name)
					}
					if variant == "kubernetes" && !strings.Contains(nodeText(&spec.Affinity), "requiredDuringSchedulingIgnoredDuringExecution") {
						t.Errorf("CronJob %s shares a ReadWriteOnce volume with the daemon and must be required on its node", d.Metadata.Name)
					}
				default:
					continue
				}
				pods++
				if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
					t.Errorf("%s %s: enableServiceLinks must be false", d.Kind, d.Metadata.Name)
				}
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("%s %s: automountServiceAccountToken must be false", d.Kind, d.Metadata.Name)
				}
				if variant != "kubernetes" && d.Kind == "Deployment" && d.Spec.Replicas < 2 {
					t.Errorf("%s: %d replicas", variant, d.Spec.Replicas)
				}
				for _, c := range spec.Containers {
					dir := t.TempDir()
					env := podEnv(t, dir, docs, spec, c, secretValues)
					settings, r := effective(t, dir, env)
					if r.code != 0 || strings.Contains(r.stdout, "# warning") {
						t.Fatalf("%s %s: publisher config --effective in the pod's environment: exit %d\n%s%s", d.Kind, d.Metadata.Name, r.code, r.stdout, r.stderr)
					}
					if variant != "kubernetes" && settings["store.driver"] != "postgres" || variant == "kubernetes" && settings["store.driver"] != "sqlite" {
						t.Errorf("%s: store.driver %q", variant, settings["store.driver"])
					}
					if variant != "kubernetes" && !strings.HasPrefix(settings["store.dsn"], "(set") {
						t.Errorf("%s: store.dsn %q", variant, settings["store.dsn"])
					}
					// The pod's command is one the binary knows.
					if r := (&desk{t: t, dir: dir, env: env}).run(append(c.Args, "--help")...); r.code != 0 {
						t.Errorf("%s %s: publisher %v --help: exit %d\n%s", d.Kind, d.Metadata.Name, c.Args, r.code, r.stderr)
					}
					// Kubernetes may kill the pod only after a message on the wire is done.
					wait := shutdownWait(t, settings)
					if grace := time.Duration(spec.TerminationGracePeriodSeconds) * time.Second; grace < wait+5*time.Second {
						t.Errorf("%s %s: terminationGracePeriodSeconds %v, but the daemon may wait %v", d.Kind, d.Metadata.Name, grace, wait)
					}
					if !isJob {
						checkProbes(t, d.Metadata.Name, c, settings)
					}
					// Even with the service links Kubernetes injects when they are
					// not turned off, the binary runs (and warns).
					withLinks, r := effective(t, dir, append(env, serviceLinks(docs)...))
					if r.code != 0 || len(withLinks) == 0 || !strings.Contains(r.stdout, "enableServiceLinks") {
						t.Errorf("%s %s with service links: exit %d\n%s%s", d.Kind, d.Metadata.Name, r.code, r.stdout, r.stderr)
					}
					// The shipped placeholder is refused.
					placeholder := map[string]string{}
					for k, v := range example[0].StringData {
						placeholder[k] = v
					}
					placeholder["dsn"] = secretValues["dsn"]
					pdir := t.TempDir()
					if _, r := effective(t, pdir, podEnv(t, pdir, docs, spec, c, placeholder)); r.code != 2 || !strings.Contains(r.stderr, "secret:") {
						t.Errorf("%s %s with the example Secret's placeholders: exit %d\n%s", d.Kind, d.Metadata.Name, r.code, r.stderr)
					}
				}
			}
			if pods != 2 {
				t.Fatalf("%s: %d pod templates, want the Deployment and the CronJob", variant, pods)
			}
		})
	}
}

func nodeText(n *yaml.Node) string {
	b, _ := yaml.Marshal(n)
	return string(b)
}

func shutdownWait(t *testing.T, settings map[string]string) time.Duration {
	t.Helper()
	var total time.Duration
	for _, k := range []string{"mail.smtp.connect_timeout", "mail.smtp.send_timeout"} {
		d, err := time.ParseDuration(settings[k])
		if err != nil {
			t.Fatalf("%s = %q: %v", k, settings[k], err)
		}
		total += d
	}
	grace, err := time.ParseDuration(settings["shutdown_grace"])
	if err != nil {
		t.Fatalf("shutdown_grace = %q", settings["shutdown_grace"])
	}
	return max(grace, total+15*time.Second)
}

// checkProbes: readiness on /readyz, and the ports the probes name are the
// ones the daemon listens on.
func checkProbes(t *testing.T, name string, c container, settings map[string]string) {
	t.Helper()
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("%s: the readiness probe must be /readyz", name)
		return
	}
	admin := settings["http.admin_listen"]
	if admin == "" {
		admin = settings["http.listen"]
	}
	for _, p := range []*probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil {
			continue
		}
		port, ok := ports[p.HTTPGet.Port]
		if !ok || !strings.HasSuffix(admin, ":"+strconv.Itoa(port)) {
			t.Errorf("%s: probe %s on port %q (%d), but /readyz and /healthz are on %s", name, p.HTTPGet.Path, p.HTTPGet.Port, port, admin)
		}
		if strings.HasPrefix(admin, "127.0.0.1:") {
			t.Errorf("%s: the probes cannot reach %s", name, admin)
		}
	}
}

// TestComposeFilesAgainstTheBinary gives each publisher service's environment,
// as Compose sets it, to the built binary.
func TestComposeFilesAgainstTheBinary(t *testing.T) {
	root := repoRoot(t)
	defaults := regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)
	for _, file := range []string{"compose.yaml", "compose-postgres.yaml"} {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(root, "deploy", file))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Services map[string]struct {
					Environment     map[string]string `yaml:"environment"`
					StopGracePeriod string            `yaml:"stop_grace_period"`
				} `yaml:"services"`
			}
			if err := yaml.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			n := 0
			for name, s := range c.Services {
				if !strings.HasPrefix(name, "publisher") {
					continue
				}
				n++
				var env []string
				for k, v := range s.Environment {
					v = defaults.ReplaceAllString(v, "$1")
					if k == "PUBLISHER_CONFIG" {
						v = filepath.Join(root, "publisher.yaml") // mounted from the repository
					}
					env = append(env, k+"="+v)
				}
				settings, r := effective(t, t.TempDir(), env)
				if r.code != 0 || strings.Contains(r.stdout, "# warning") {
					t.Fatalf("%s: publisher config --effective: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
				}
				if file == "compose-postgres.yaml" && settings["store.driver"] != "postgres" {
					t.Errorf("%s: store.driver %q", name, settings["store.driver"])
				}
				grace, err := time.ParseDuration(s.StopGracePeriod)
				if wait := shutdownWait(t, settings); err != nil || grace < wait+5*time.Second {
					t.Errorf("%s: stop_grace_period %q, but the daemon may wait %v", name, s.StopGracePeriod, wait)
				}
			}
			if n == 0 || (file == "compose-postgres.yaml" && n < 2) {
				t.Fatalf("%d publisher services", n)
			}
		})
	}
}
