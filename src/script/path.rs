//! The script path: where a script name resolves. First match wins: `--scripts DIR`
//! (repeatable), `SLOTSMITH_PATH`, the user directory, then the bundled `stdlib/`
//! compiled into the binary. Also the module resolver that makes `import` use it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// The scripts shipped inside the binary: name (without `.rhai`) and text.
pub const BUNDLED: &[(&str, &str)] = &[
    ("check", include_str!("../../stdlib/check.rhai")),
    ("fix", include_str!("../../stdlib/fix.rhai")),
    ("complete", include_str!("../../stdlib/complete.rhai")),
    ("cancel", include_str!("../../stdlib/cancel.rhai")),
    ("rebalance", include_str!("../../stdlib/rebalance.rhai")),
    ("reshard", include_str!("../../stdlib/reshard.rhai")),
    ("call", include_str!("../../stdlib/call.rhai")),
    ("info", include_str!("../../stdlib/info.rhai")),
    ("set-timeout", include_str!("../../stdlib/set-timeout.rhai")),
    ("create", include_str!("../../stdlib/create.rhai")),
    ("add-node", include_str!("../../stdlib/add-node.rhai")),
    ("del-node", include_str!("../../stdlib/del-node.rhai")),
    ("failover", include_str!("../../stdlib/failover.rhai")),
    ("forget", include_str!("../../stdlib/forget.rhai")),
    ("map", include_str!("../../stdlib/map.rhai")),
    ("apply", include_str!("../../stdlib/apply.rhai")),
    ("resume", include_str!("../../stdlib/resume.rhai")),
    (
        "lab/stuck-slot",
        include_str!("../../stdlib/lab/stuck-slot.rhai"),
    ),
    ("lab/form", include_str!("../../stdlib/lab/form.rhai")),
    ("lib/slot", include_str!("../../stdlib/lib/slot.rhai")),
    ("lib/ends", include_str!("../../stdlib/lib/ends.rhai")),
    ("lib/plan", include_str!("../../stdlib/lib/plan.rhai")),
    ("lib/load", include_str!("../../stdlib/lib/load.rhai")),
    ("lib/jobs", include_str!("../../stdlib/lib/jobs.rhai")),
    ("lib/guard", include_str!("../../stdlib/lib/guard.rhai")),
];

/// Where a script came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Bundled,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Bundled => write!(f, "bundled"),
        }
    }
}

/// A script's text and where it was found.
#[derive(Debug, Clone)]
pub struct Script {
    /// The name it is known by in errors: `fix.rhai`, or the path given.
    pub name: String,
    pub origin: Origin,
    pub text: String,
}

/// One row of `scripts list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing {
    pub name: String,
    /// Where the name resolves.
    pub resolves_to: String,
    /// Other places further down the path that the first one hides.
    pub shadows: Vec<String>,
}

/// The directories searched for scripts, in order, before the bundled ones.
#[derive(Debug, Clone, Default)]
pub struct ScriptPath {
    pub dirs: Vec<PathBuf>,
    /// Texts served instead of what some files hold now, by file: the REPL's `:edit`
    /// keeps the last version of a script that compiled in use until the file compiles
    /// again. Empty everywhere else.
    pinned: BTreeMap<PathBuf, String>,
    /// `--allow-unsafe-scripts`: run scripts that other users can change.
    allow_unsafe: bool,
    /// `--quiet`: no notice when a user copy is used in place of a bundled script.
    quiet: bool,
    /// The names already noticed as user copies in this run.
    noticed: Rc<RefCell<std::collections::BTreeSet<String>>>,
}

/// Whether the operator named a file rather than a script: an absolute path, one
/// starting with `./` or `../`, or a name ending in `.rhai`. Anything else is a name
/// looked up on the script path only: never a file that happens to stand in the
/// working directory.
pub fn names_a_file(what: &str) -> bool {
    what.starts_with('/')
        || what.starts_with("./")
        || what.starts_with("../")
        || what.ends_with(".rhai")
}

/// Why a script file must not be run: another user can change it or a directory
/// between `root` (a script directory, or the file's own directory) and it (group- or
/// world-writable, or owned by someone else than you or root, as ssh refuses a key
/// file). `None` when it is safe. What cannot be looked at is not safe.
fn unsafe_because(file: &Path, root: Option<&Path>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    let bad = |p: &Path, what: &str| -> Option<String> {
        let shown = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        match std::fs::metadata(shown) {
            Err(e) => Some(format!(
                "the {what} {} cannot be checked ({e})",
                shown.display()
            )),
            // A sticky directory (/tmp) lets others add files but not replace yours:
            // the owner check of the file itself covers it.
            Ok(m) if m.mode() & 0o022 != 0 && !(m.is_dir() && m.mode() & 0o1000 != 0) => {
                Some(format!(
                    "the {what} {} can be written by other users",
                    shown.display()
                ))
            }
            Ok(m) if m.uid() != me && m.uid() != 0 => Some(format!(
                "the {what} {} belongs to another user",
                shown.display()
            )),
            Ok(_) => None,
        }
    };
    let parent = file.parent().unwrap_or(Path::new(""));
    let root = root.unwrap_or(parent);
    let mut dirs: Vec<&Path> = parent
        .ancestors()
        .take_while(|d| d.starts_with(root))
        .collect();
    if dirs.is_empty() {
        dirs.push(parent);
    }
    dirs.iter()
        .rev()
        .find_map(|d| bad(d, "script directory"))
        .or_else(|| bad(file, "script"))
}

/// `$XDG_CONFIG_HOME/slotsmith/scripts`, else `~/.config/slotsmith/scripts`.
pub fn user_dir() -> Option<PathBuf> {
    crate::xdg::dir(crate::xdg::Base::Config, "scripts")
}

fn normalize(name: &str) -> &str {
    name.strip_suffix(".rhai").unwrap_or(name)
}

/// The bundled script of that name (with or without `.rhai`).
pub fn bundled(name: &str) -> Option<&'static str> {
    let name = normalize(name);
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Where `scripts eject NAME` and the REPL's `:edit` / `:save` put the user's copy of
/// a script: `NAME.rhai` in the [`user_dir`].
pub fn user_file(name: &str) -> Result<PathBuf, String> {
    let dir = user_dir()
        .ok_or_else(|| "cannot find the user directory: set XDG_CONFIG_HOME or HOME".to_string())?;
    Ok(dir.join(format!("{}.rhai", normalize(name))))
}

/// Copy a bundled script into the user directory (creating it), so that it can be
/// edited and is found before the bundled one. An existing copy is overwritten only
/// with `overwrite`.
pub fn eject(name: &str, overwrite: bool) -> Result<PathBuf, String> {
    let name = normalize(name);
    let text = bundled(name).ok_or_else(|| {
        format!(
            "there is no bundled script named \"{name}\"; bundled: {}",
            BUNDLED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let dest = user_file(name)?;
    if dest.exists() && !overwrite {
        return Err(format!("{} already exists", dest.display()));
    }
    write_user_script(&dest, text)?;
    Ok(dest)
}

/// Write a script of the user's (`eject`, the REPL's `:save` and `:edit`): its
/// directories 0755 and the file 0644 whatever the umask, so that the script path
/// does not refuse it as writable by others.
pub fn write_user_script(file: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| format!("cannot set the permissions of {}: {e}", file.display()))
}

/// The key a file is pinned under: the same file however the path to it is spelt.
fn pin_key(file: &Path) -> PathBuf {
    file.canonicalize().unwrap_or_else(|_| file.to_path_buf())
}

impl ScriptPath {
    /// `--scripts` directories, then `SLOTSMITH_PATH`, then the user directory.
    pub fn new(cli_dirs: &[PathBuf]) -> Self {
        let mut dirs: Vec<PathBuf> = cli_dirs.to_vec();
        if let Some(p) = std::env::var_os("SLOTSMITH_PATH") {
            dirs.extend(std::env::split_paths(&p).filter(|d| !d.as_os_str().is_empty()));
        }
        dirs.extend(user_dir());
        ScriptPath {
            dirs,
            ..ScriptPath::default()
        }
    }

    /// `--allow-unsafe-scripts` and `--quiet` of this run.
    pub fn with_options(mut self, allow_unsafe: bool, quiet: bool) -> Self {
        self.allow_unsafe = allow_unsafe;
        self.quiet = quiet;
        self
    }

    /// Refuse a script file that other users can change, unless allowed.
    fn check_safe(&self, file: &Path, root: Option<&Path>) -> Result<(), String> {
        match unsafe_because(file, root) {
            Some(why) if !self.allow_unsafe => Err(format!(
                "refusing to run {}: {why}; fix its permissions (chmod go-w) or pass --allow-unsafe-scripts",
                file.display()
            )),
            _ => Ok(()),
        }
    }

    /// Serve `text` for `file` from now on, instead of what the file holds.
    pub fn pin(&mut self, file: &Path, text: String) {
        self.pinned.insert(pin_key(file), text);
    }

    /// Read `file` itself again; whether it was pinned.
    pub fn unpin(&mut self, file: &Path) -> bool {
        self.pinned.remove(&pin_key(file)).is_some()
    }

    /// Whether `file` is served from a pinned text.
    pub fn is_pinned(&self, file: &Path) -> bool {
        !self.pinned.is_empty() && self.pinned.contains_key(&pin_key(file))
    }

    /// Every pinned file.
    pub fn pinned_files(&self) -> Vec<PathBuf> {
        self.pinned.keys().cloned().collect()
    }

    /// A file's text, or its pinned text.
    fn read(&self, file: &Path) -> std::io::Result<String> {
        if !self.pinned.is_empty() {
            if let Some(text) = self.pinned.get(&pin_key(file)) {
                return Ok(text.clone());
            }
        }
        std::fs::read_to_string(file)
    }

    /// Every place `name` exists, in path order, with the script directory it was
    /// found in. A user's file is known by its full path, so its errors say which copy
    /// they are in.
    fn found(&self, name: &str) -> Vec<(Script, Option<&Path>)> {
        let name = normalize(name);
        let file = format!("{name}.rhai");
        let mut out = Vec::new();
        for d in &self.dirs {
            let p = d.join(&file);
            if let Ok(text) = self.read(&p) {
                out.push((
                    Script {
                        name: p.display().to_string(),
                        origin: Origin::File(p),
                        text,
                    },
                    Some(d.as_path()),
                ));
            }
        }
        if let Some((_, text)) = BUNDLED.iter().find(|(n, _)| *n == name) {
            out.push((
                Script {
                    name: file,
                    origin: Origin::Bundled,
                    text: text.to_string(),
                },
                None,
            ));
        }
        out
    }

    /// Every place `name` exists, in path order.
    fn candidates(&self, name: &str) -> Vec<Script> {
        self.found(name).into_iter().map(|(s, _)| s).collect()
    }

    /// The script a name resolves to (refused when other users can change it). A
    /// user's copy used in place of a bundled script is said once per run on stderr.
    pub fn find(&self, name: &str) -> Result<Option<Script>, String> {
        self.find_as(name, true)
    }

    /// The script a name resolves to, without the notice that a user copy shadows a
    /// bundled one: for reading declarations, not for running.
    pub fn peek(&self, name: &str) -> Result<Option<Script>, String> {
        self.find_as(name, false)
    }

    /// A file the operator named, or the script a name resolves to, without notices:
    /// for reading a declaration before the run.
    pub fn peek_or_load(&self, what: &str) -> Result<Script, String> {
        if names_a_file(what) {
            return self.load(what);
        }
        self.peek(what)?
            .ok_or_else(|| format!("no script named \"{what}\""))
    }

    fn find_as(&self, name: &str, notice: bool) -> Result<Option<Script>, String> {
        let found = self.found(name);
        let Some((first, dir)) = found.first().cloned() else {
            return Ok(None);
        };
        if let Origin::File(p) = &first.origin {
            self.check_safe(p, dir)?;
            if notice
                && found.iter().any(|(s, _)| s.origin == Origin::Bundled)
                && !self.quiet
                && self
                    .noticed
                    .borrow_mut()
                    .insert(normalize(name).to_string())
            {
                eprintln!(
                    "slotsmith: using your copy {} in place of the bundled {}",
                    p.display(),
                    normalize(name)
                );
            }
        }
        Ok(Some(first))
    }

    /// A file the operator named (see [`names_a_file`]), or a name on the script path
    /// (names may have folders: `lib/plan`). A name is never looked up in the working
    /// directory.
    pub fn load(&self, what: &str) -> Result<Script, String> {
        if names_a_file(what) {
            let p = Path::new(what);
            if !p.is_file() {
                return Err(format!("script file {what} does not exist"));
            }
            self.check_safe(p, None)?;
            // Known by a path, never by a bare name that could pass for a bundled one.
            let name = if what.contains('/') {
                what.to_string()
            } else {
                format!("./{what}")
            };
            return self
                .read(p)
                .map(|text| Script {
                    name,
                    origin: Origin::File(p.to_path_buf()),
                    text,
                })
                .map_err(|e| format!("cannot read script {what}: {e}"));
        }
        if let Some(s) = self.find(what)? {
            return Ok(s);
        }
        let here = if Path::new(&format!("{what}.rhai")).is_file() {
            format!("; to run the file {what}.rhai here, give it as a path: ./{what}.rhai")
        } else if Path::new(what).is_file() {
            format!("; to run the file {what} here, give it as a path: ./{what}")
        } else {
            String::new()
        };
        Err(format!(
            "no script named \"{what}\" on the script path ({}){here}; `slotsmith scripts list` shows what there is",
            self.describe()
        ))
    }

    /// What `import "name"` from the script `importer` (its name) loads: the name on
    /// the script path, else the file next to the importing file. Never a path, never
    /// the working directory.
    pub fn import(&self, name: &str, importer: Option<&str>) -> Result<Script, String> {
        let bad = name.is_empty()
            || name.starts_with('/')
            || name.starts_with('~')
            || Path::new(name)
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)));
        if bad {
            return Err(format!(
                "import \"{name}\": an import names a script on the script path ({}) or next to the importing file, not a path",
                self.describe()
            ));
        }
        if let Some(s) = self.find(name)? {
            return Ok(s);
        }
        let beside = importer
            .filter(|i| names_a_file(i) || Path::new(i).is_absolute())
            .and_then(|i| Path::new(i).parent())
            .map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            })
            .map(|d| d.join(format!("{}.rhai", normalize(name))));
        if let Some(p) = beside.filter(|p| p.is_file()) {
            self.check_safe(&p, None)?;
            let text = self
                .read(&p)
                .map_err(|e| format!("cannot read script {}: {e}", p.display()))?;
            return Ok(Script {
                name: p.display().to_string(),
                origin: Origin::File(p),
                text,
            });
        }
        Err(format!(
            "import \"{name}\": no script of that name on the script path ({}) or next to the importing file",
            self.describe()
        ))
    }

    /// The path as one line, for messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        parts.push("bundled".into());
        parts.join(", ")
    }

    /// Every script name on the path, where it resolves and what it shadows.
    pub fn list(&self) -> Vec<Listing> {
        let mut names: Vec<String> = BUNDLED.iter().map(|(n, _)| n.to_string()).collect();
        for d in &self.dirs {
            collect_names(d, d, &mut names);
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                let c = self.candidates(&n);
                Listing {
                    name: n,
                    resolves_to: c.first().map(|s| s.origin.to_string()).unwrap_or_default(),
                    shadows: c.iter().skip(1).map(|s| s.origin.to_string()).collect(),
                }
            })
            .collect()
    }
}

fn collect_names(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_names(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "rhai") {
            if let Ok(rel) = p.strip_prefix(root) {
                let s = rel.to_string_lossy();
                out.push(normalize(&s).to_string());
            }
        }
    }
}

/// Script texts by name, kept so errors can quote the offending line.
pub type Sources = Rc<RefCell<HashMap<String, String>>>;

/// Resolves `import "name"` through the script path; each module is compiled once.
pub struct PathResolver {
    path: ScriptPath,
    sources: Sources,
    cache: RefCell<HashMap<String, Shared<Module>>>,
}

impl PathResolver {
    pub fn new(path: ScriptPath, sources: Sources) -> Self {
        PathResolver {
            path,
            sources,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl ModuleResolver for PathResolver {
    fn resolve(
        &self,
        engine: &Engine,
        importer: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let script = self
            .path
            .import(path, importer)
            .map_err(|e| Box::new(EvalAltResult::ErrorRuntime(e.into(), pos)))?;
        if let Some(m) = self.cache.borrow().get(&script.name) {
            return Ok(m.clone());
        }
        self.sources
            .borrow_mut()
            .insert(script.name.clone(), script.text.clone());
        let mut ast = engine.compile(&script.text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                script.name.clone(),
                e.into(),
                pos,
            ))
        })?;
        ast.set_source(script.name.as_str());
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(script.name.clone(), e, pos)))?;
        module.build_index();
        let module: Shared<Module> = module.into();
        self.cache
            .borrow_mut()
            .insert(script.name.clone(), module.clone());
        Ok(module)
    }
}
