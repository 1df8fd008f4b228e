//! The call paths with the JIT refused for real. A full run re-executes
//! itself as `jitcall bench --under-mdwe --json FILE`: the child installs
//! `PR_SET_MDWE` with `PR_MDWE_REFUSE_EXEC_GAIN` (Linux 6.3 and later)
//! before jitcall's probe runs, so that no mapping can become executable
//! and every eligible function lands on the baked tier with the refusal
//! as its reason; it times every signature and writes them as JSON, which
//! the parent reads back into its report.

use std::process::Command;

use serde_json::Value as Json;

use super::cases::Case;
use super::timing::{Measurement, Summary};
use super::{BakedStub, CaseResult, Path};

/// The call paths timed in a child process under `PR_SET_MDWE`.
pub enum Refused {
    Measured {
        /// The child's JIT status: why it was refused.
        jit: String,
        cases: Vec<CaseResult>,
    },
    /// Why there are no such figures.
    NotRun(String),
}

/// Makes every later attempt to map or flip memory executable fail, for
/// the rest of the process's life.
///
/// # Errors
///
/// The kernel's refusal: `EINVAL` before Linux 6.3 and under emulators
/// that do not implement it.
pub fn install_mdwe() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only; it changes no memory.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MDWE,
            libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(format!(
            "prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Runs this binary again under `PR_SET_MDWE` and reads back its figures.
pub fn measure_in_child(quick: bool, table: &[Case]) -> Refused {
    match run_child(quick, table) {
        Ok(refused) => refused,
        Err(why) => Refused::NotRun(why),
    }
}

fn run_child(quick: bool, table: &[Case]) -> Result<Refused, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let json = std::env::temp_dir().join(format!("jitcall-under-mdwe-{}.json", std::process::id()));
    let mut child = Command::new(&exe);
    // The child's refusal is the kernel's, whatever this process was told.
    child
        .args(["bench", "--under-mdwe", "--json"])
        .arg(&json)
        .env_remove("JITCALL_DISABLE_JIT");
    if quick {
        child.arg("--quick");
    }
    let output = child
        .output()
        .map_err(|e| format!("cannot re-execute {}: {e}", exe.display()))?;
    let read = std::fs::read_to_string(&json);
    // The file is ours to remove whether the child wrote it or not.
    let _ = std::fs::remove_file(&json);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.trim().lines().last().unwrap_or("no message");
        return Err(format!("the child under PR_SET_MDWE failed: {why}"));
    }
    let text = read.map_err(|e| format!("the child wrote no results: {e}"))?;
    let json: Json = serde_json::from_str(&text).map_err(|e| format!("the child's JSON: {e}"))?;
    parse(&json, table).ok_or_else(|| "the child's JSON is not what it should be".to_string())
}

/// The child's JSON back into results, each case matched to `table`.
fn parse(json: &Json, table: &[Case]) -> Option<Refused> {
    let jit = json["machine"]["jit"].as_str()?.to_string();
    let cases = json["signatures"]
        .as_array()?
        .iter()
        .map(|signature| case_from_json(signature, table))
        .collect::<Option<Vec<_>>>()?;
    Some(Refused::Measured { jit, cases })
}

fn summary_from_json(json: &Json) -> Option<Summary> {
    Some(Summary {
        median: json["median"].as_f64()?,
        min: json["min"].as_f64()?,
        max: json["max"].as_f64()?,
        samples: usize::try_from(json["samples"].as_u64()?).ok()?,
    })
}

fn case_from_json(json: &Json, table: &[Case]) -> Option<CaseResult> {
    let name = json["name"].as_str()?;
    let case = table.iter().find(|case| case.name == name)?;
    let paths = Path::ALL
        .iter()
        .map(|path| {
            let path = &json["paths"][path.key()];
            if path.is_null() {
                return Some(None);
            }
            Some(Some(Measurement {
                ns_per_call: summary_from_json(&path["ns_per_call"])?,
                iters_per_sample: path["iters_per_sample"].as_u64()?,
            }))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CaseResult {
        name: case.name,
        signature: json["signature"].as_str()?.to_string(),
        tier: json["tier"].as_str()?.to_string(),
        baked_stub: match json["baked_stub"].as_str()? {
            "shape stub" => BakedStub::Shape,
            "register file" => BakedStub::RegisterFile,
            _ => return None,
        },
        library_symbol: json["library_symbol"].as_bool()?,
        args: usize::try_from(json["args"].as_u64()?).ok()?,
        register_args: json["register_args"].as_bool()?,
        stack_args: usize::try_from(json["stack_args"].as_u64()?).ok()?,
        receiver: None,
        paths,
    })
}
