//! Where a manifest URL is fetched from: `hf://OWNER/REPO/FILE` on the
//! Hugging Face Hub (`$HF_ENDPOINT`, else huggingface.co), a relative URL
//! next to the manifest (a folder or a server), and mirrors that rewrite URL
//! prefixes (`--mirror FROM=TO`, `$MIXCO_ZOO_MIRROR` as `FROM=TO;FROM=TO`),
//! which is also how tests serve the publishers' paths from 127.0.0.1.

use crate::Error;

/// Where the manifest came from, for relative URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// The embedded manifest: relative URLs are an error.
    None,
    /// A folder (the manifest file's).
    Folder(std::path::PathBuf),
    /// A URL ending in `/`.
    Url(String),
}

/// A resolved location: a URL to download, or a local file to copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Url(String),
    File(std::path::PathBuf),
}

/// `(FROM, TO)` prefix rewrites from `FROM=TO;FROM=TO`.
pub fn parse_mirrors(spec: &str) -> Result<Vec<(String, String)>, Error> {
    spec.split(';')
        .filter(|s| !s.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => Ok((from.trim().to_string(), to.trim().to_string())),
            _ => Err(Error::Invalid(format!("mirror `{pair}`: expected FROM=TO (a URL prefix and its replacement)"))),
        })
        .collect()
}

/// The Hub's download URL of `hf://OWNER/REPO/FILE`.
pub fn hugging_face(url: &str) -> Option<String> {
    let rest = url.strip_prefix("hf://")?;
    let mut parts = rest.splitn(3, '/');
    let (owner, repo, file) = (parts.next()?, parts.next()?, parts.next()?);
    if owner.is_empty() || repo.is_empty() || file.is_empty() {
        return None;
    }
    let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty()).unwrap_or_else(|| "https://huggingface.co".into());
    Some(format!("{}/{owner}/{repo}/resolve/main/{file}", endpoint.trim_end_matches('/')))
}

/// Applies the first mirror whose prefix `url` has.
pub fn mirrored(url: &str, mirrors: &[(String, String)]) -> String {
    mirrors.iter().find_map(|(from, to)| url.strip_prefix(from.as_str()).map(|rest| format!("{to}{rest}"))).unwrap_or_else(|| url.to_string())
}

/// Where `url` (as written in a manifest at `base`) is fetched from.
pub fn locate(url: &str, base: &Base, mirrors: &[(String, String)]) -> Result<Location, Error> {
    let absolute = if url.starts_with("hf://") {
        hugging_face(url).ok_or_else(|| Error::Invalid(format!("`{url}`: expected hf://OWNER/REPO/FILE")))?
    } else if url.contains("://") {
        url.to_string()
    } else {
        match base {
            Base::Folder(dir) => return Ok(Location::File(dir.join(url))),
            Base::Url(b) => format!("{b}{url}"),
            Base::None => return Err(Error::Invalid(format!("`{url}` is a relative URL, but the manifest has no location"))),
        }
    };
    Ok(Location::Url(mirrored(&absolute, mirrors)))
}

/// Google Drive's "can't scan this file for viruses" page for a large
/// file: the URL its download form submits to, from the form's action and
/// hidden fields (or, in the older page, the link that carries `confirm=`).
pub fn drive_confirm_url(html: &str) -> Option<String> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[at..].find('"')? + at;
        Some(tag[at..end].replace("&amp;", "&"))
    };
    if let Some(start) = html.find("<form") {
        let form = &html[start..start + html[start..].find("</form>").unwrap_or(html.len() - start)];
        let action = attr(&form[..form.find('>')?], "action")?;
        let fields: Vec<String> = form
            .split("<input")
            .skip(1)
            .filter(|t| t.contains("type=\"hidden\""))
            .filter_map(|t| Some(format!("{}={}", attr(t, "name")?, attr(t, "value")?)))
            .collect();
        return Some(if fields.is_empty() { action } else { format!("{action}?{}", fields.join("&")) });
    }
    html.split("href=\"").skip(1).filter_map(|h| h.split('"').next()).find(|h| h.contains("confirm=")).map(|h| h.replace("&amp;", "&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_to_where_they_are_fetched() {
        let m = parse_mirrors("https://dl.fbaipublicfiles.com=http://127.0.0.1:9/fb; https://drive.google.com=http://127.0.0.1:9/drive").unwrap();
        assert_eq!(locate("https://dl.fbaipublicfiles.com/moco/a.pth.tar", &Base::None, &m).unwrap(), Location::Url("http://127.0.0.1:9/fb/moco/a.pth.tar".into()));
        assert_eq!(locate("https://example.org/x", &Base::None, &m).unwrap(), Location::Url("https://example.org/x".into()));
        assert_eq!(locate("a.onnx", &Base::Url("http://h/dist/".into()), &[]).unwrap(), Location::Url("http://h/dist/a.onnx".into()));
        assert_eq!(locate("a.onnx", &Base::Folder("/d".into()), &[]).unwrap(), Location::File("/d/a.onnx".into()));
        assert!(locate("a.onnx", &Base::None, &[]).is_err());
        assert!(parse_mirrors("nothing-here").is_err());
        assert_eq!(hugging_face("hf://owner"), None);
    }

    #[test]
    fn drive_confirm_pages_give_the_download_url() {
        let page = r#"<html><body><form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
            <input type="submit" value="Download anyway"/><input type="hidden" name="id" value="1Dg_SNG">
            <input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t">
            <input type="hidden" name="uuid" value="ab-12"></form></body></html>"#;
        assert_eq!(drive_confirm_url(page).unwrap(), "https://drive.usercontent.google.com/download?id=1Dg_SNG&export=download&confirm=t&uuid=ab-12");
        let old = r#"<a id="uc-download-link" href="/uc?export=download&amp;confirm=AbCd&amp;id=1Dg">Download anyway</a>"#;
        assert_eq!(drive_confirm_url(old).unwrap(), "/uc?export=download&confirm=AbCd&id=1Dg");
        assert_eq!(drive_confirm_url("<html>quota exceeded</html>"), None);
    }
}
