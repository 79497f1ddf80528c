//! Where results go: named after their file with the result's extension,
//! written atomically (a temporary file renamed into place, so an
//! interrupted run never leaves half an image), and the batch's record of
//! what it finished.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The record a batch keeps in its output folder.
pub const RECORD: &str = ".kiln-batch";

/// The usual file extension of a result's media type.
pub fn extension(media_type: &str) -> &'static str {
    match media_type.split(';').next().unwrap_or_default().trim() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/avif" => "avif",
        _ => "bin",
    }
}

/// `dir/stem.ext`, for an input `…/stem.orig`; `keep_extension` keeps the
/// input's own extension in the name (`stem.orig.ext`), for folders where
/// two inputs share a stem.
pub fn result_path(dir: &Path, input: &Path, media_type: &str, keep_extension: bool) -> PathBuf {
    let name = if keep_extension {
        input.file_name()
    } else {
        input.file_stem()
    }
    .unwrap_or_default();
    let mut name = name.to_os_string();
    name.push(".");
    name.push(extension(media_type));
    dir.join(name)
}

/// The results one run writes: none may overwrite one of the run's
/// inputs (`kiln process a.jpg -o .` keeps a JPEG's name) or another
/// file's result (`a/x.jpg` and `b/x.jpg` into one folder).
pub struct Outputs {
    inputs: HashSet<PathBuf>,
    /// Result path → the input it is the result of.
    written: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl Outputs {
    /// A run over `inputs`.
    pub fn new(inputs: &[PathBuf]) -> Outputs {
        Outputs {
            inputs: inputs.iter().map(|input| comparable(input)).collect(),
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Writes `input`'s result to `path` (atomically), unless that would
    /// overwrite an input or another input's result.
    pub fn write(&self, input: &Path, path: &Path, bytes: &[u8]) -> Result<(), String> {
        self.claim(input, path)?;
        write_atomically(path, bytes)
    }

    /// Reserves `path` for `input`'s result: refused if it is an input or
    /// another input's result. Claimed before submitting where the
    /// result's name is known then, so that no job runs for a result that
    /// could not be written.
    pub fn claim(&self, input: &Path, path: &Path) -> Result<(), String> {
        let target = comparable(path);
        if self.inputs.contains(&target) {
            return Err(format!(
                "the result would overwrite the input {}: write results to another folder",
                path.display()
            ));
        }
        let mut written = self.written.lock().expect("no writer panics");
        let owner = written.entry(target).or_insert_with(|| input.to_path_buf());
        if owner != input {
            return Err(format!(
                "the result would overwrite {}, the result of {}: write them to separate folders",
                path.display(),
                owner.display()
            ));
        }
        Ok(())
    }
}

/// The result's media type when the request fixes it: ops given without
/// `format(auto)` make the last `format(..)`, else the input's own format
/// (kiln-image's rule, the server's). `None` when the server decides (its
/// default ops; `format(auto)` and `Accept`).
pub fn predicted_media_type(ops: Option<&str>, bytes: &[u8]) -> Option<&'static str> {
    let ops = kiln_image::parse_ops(ops?).ok()?;
    if ops.contains(&kiln_image::Op::AutoFormat) {
        return None;
    }
    let source = kiln_image::Format::sniff(bytes)?;
    Some(kiln_image::output_format(source, &ops).media_type())
}

/// A path as it can be compared with another: its folder resolved (links,
/// `..`), where it exists.
fn comparable(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map_or_else(|_| absolute.clone(), |parent| parent.join(name)),
        _ => absolute,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// flushed to the disk before it is renamed into place: a result that
/// exists is whole, even after a crash (a batch skips it on a rerun).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    /// Tells apart the temporary files of one process's threads.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let fail = |err: std::io::Error| format!("writing {}: {err}", path.display());
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder {
        fs::create_dir_all(folder).map_err(fail)?;
    }
    // Hidden, so that a run killed while writing leaves nothing a later
    // batch of this folder would take for an image.
    let mut partial = std::ffi::OsString::from(".");
    partial.push(path.file_name().unwrap_or_default());
    partial.push(format!(
        ".partial-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let partial = path.with_file_name(partial);
    let written = fs::File::create(&partial)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&partial, path));
    if let Err(err) = written {
        let _ = fs::remove_file(&partial);
        return Err(fail(err));
    }
    // The rename itself is durable once the folder is flushed (where a
    // folder can be opened to be: not on every platform).
    if let Ok(folder) = fs::File::open(folder.unwrap_or(Path::new("."))) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// What earlier runs of a batch finished: idempotency key → the job's id
/// and the result's path (relative to the output folder). One line per
/// finished file, `KEY ID PATH`, appended after its result is in place.
pub struct Record {
    path: PathBuf,
    finished: HashMap<String, Finished>,
}

/// A file an earlier run finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The job that made it.
    pub id: String,
    /// Its result.
    pub output: PathBuf,
}

impl Record {
    /// The record in `out`, empty if there is none yet.
    pub fn open(out: &Path) -> Record {
        let path = out.join(RECORD);
        let finished = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ' ');
                let key = fields.next()?.to_owned();
                let id = fields.next()?.to_owned();
                let output = PathBuf::from(fields.next()?);
                Some((key, Finished { id, output }))
            })
            .collect();
        Record { path, finished }
    }

    /// What a previous run made for `key`, if its result is still there.
    pub fn finished(&self, out: &Path, key: &str) -> Option<Finished> {
        let finished = self.finished.get(key)?;
        let output = out.join(&finished.output);
        output.is_file().then(|| Finished {
            id: finished.id.clone(),
            output,
        })
    }

    /// Notes that job `id` made `key`'s result, now at `result` (inside
    /// `out`).
    pub fn add(&self, out: &Path, key: &str, id: &str, result: &Path) -> Result<(), String> {
        let relative = result.strip_prefix(out).unwrap_or(result);
        let line = format!("{key} {id} {}\n", relative.display());
        // One write of one line with O_APPEND: workers' lines never mix.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .map_err(|err| format!("writing {}: {err}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_takes_its_media_type_s_extension() {
        let dir = Path::new("out");
        assert_eq!(
            result_path(dir, Path::new("in/photo.jpeg"), "image/webp", false),
            Path::new("out/photo.webp")
        );
        assert_eq!(
            result_path(dir, Path::new("in/photo.png"), "image/jpeg", true),
            Path::new("out/photo.png.jpg")
        );
    }

    #[test]
    fn no_result_overwrites_an_input_or_another_result() {
        let dir = std::env::temp_dir().join(format!("kiln-cli-outputs-{}", std::process::id()));
        fs::create_dir_all(dir.join("a")).unwrap();
        fs::write(dir.join("a/x.jpg"), b"input").unwrap();
        let inputs = [dir.join("a/x.jpg"), dir.join("b/x.jpg")];
        let outputs = Outputs::new(&inputs);

        // The same file named another way is still the input.
        let err = outputs
            .write(&inputs[0], &dir.join("a/../a/x.jpg"), b"result")
            .unwrap_err();
        assert!(err.contains("would overwrite the input"), "{err}");
        assert_eq!(fs::read(dir.join("a/x.jpg")).unwrap(), b"input");

        outputs
            .write(&inputs[0], &dir.join("out/x.jpg"), b"first")
            .unwrap();
        let err = outputs
            .write(&inputs[1], &dir.join("out/x.jpg"), b"second")
            .unwrap_err();
        assert!(err.contains("the result of"), "{err}");
        assert_eq!(fs::read(dir.join("out/x.jpg")).unwrap(), b"first");
        // Its own result again (a retry) is fine.
        outputs
            .write(&inputs[0], &dir.join("out/x.jpg"), b"again")
            .unwrap();
        let leftovers: Vec<_> = fs::read_dir(dir.join("out"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["x.jpg"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_result_s_format_is_predicted_only_when_the_request_fixes_it() {
        let png = b"\x89PNG\r\n\x1a\n....";
        assert_eq!(
            predicted_media_type(Some("blur(sigma=2)"), png),
            Some("image/png")
        );
        assert_eq!(
            predicted_media_type(Some("format(gif),format(webp)"), png),
            Some("image/webp")
        );
        assert_eq!(predicted_media_type(Some("format(auto)"), png), None);
        assert_eq!(predicted_media_type(None, png), None);
        assert_eq!(predicted_media_type(Some("blur(sigma=2)"), b"text"), None);
        assert_eq!(predicted_media_type(Some("nonsense("), png), None);
    }

    #[test]
    fn the_record_remembers_results_that_still_exist() {
        let out = std::env::temp_dir().join(format!("kiln-cli-record-{}", std::process::id()));
        fs::create_dir_all(&out).unwrap();
        let record = Record::open(&out);
        write_atomically(&out.join("a.png"), b"png").unwrap();
        record
            .add(&out, "kiln-1", "id-1", &out.join("a.png"))
            .unwrap();
        record
            .add(&out, "kiln-2", "id-2", &out.join("gone.png"))
            .unwrap();
        let reopened = Record::open(&out);
        let finished = Finished {
            id: "id-1".into(),
            output: out.join("a.png"),
        };
        assert_eq!(reopened.finished(&out, "kiln-1"), Some(finished));
        assert_eq!(reopened.finished(&out, "kiln-2"), None);
        assert_eq!(reopened.finished(&out, "kiln-3"), None);
        fs::remove_dir_all(&out).unwrap();
    }
}
