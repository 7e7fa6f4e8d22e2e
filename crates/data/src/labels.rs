//! Labels across splits: class names made one list, and
//! `data.normal_labels` resolved to label numbers.

use crate::{DataConfig, DataError, LabelRef, OUTLIER_LABEL_OFFSET, Sets};

/// Gives the splits with named classes one list of names, sorted, and
/// relabels their images by it; returns the list (`None` when the labels
/// are plain numbers). Splits must agree: all named, or all numbered.
pub(crate) fn unify(sets: &mut Sets) -> Result<Option<Vec<String>>, DataError> {
    let mut labelled: Vec<&mut crate::ImageSet> = [
        Some(&mut sets.train),
        Some(&mut sets.test),
        sets.validation.as_mut(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.labels.is_some())
    .collect();
    let named = labelled
        .iter()
        .find(|s| s.names.is_some())
        .map(|s| s.origin.clone());
    let Some(named) = named else {
        return Ok(None);
    };
    if let Some(numbered) = labelled.iter().find(|s| s.names.is_none()) {
        return Err(DataError::Labels(format!(
            "{} has numbered labels but {} has named classes; give every split the same kind of labels (class folders, or numbers)",
            numbered.origin.display(),
            named.display()
        )));
    }
    let mut all: Vec<String> = labelled
        .iter()
        .flat_map(|s| s.names.iter().flatten().cloned())
        .collect();
    all.sort();
    all.dedup();
    if all.len() > 256 {
        return Err(DataError::Labels(format!(
            "the splits name {} classes between them; ae takes at most 256",
            all.len()
        )));
    }
    for set in &mut labelled {
        let names = set.names.take().unwrap_or_default();
        let map: Vec<u8> = names
            .iter()
            .map(|n| all.binary_search(n).map_or(0, |i| i as u8))
            .collect();
        if let Some(labels) = &mut set.labels {
            for label in labels.iter_mut() {
                *label = map.get(usize::from(*label)).copied().unwrap_or(*label);
            }
        }
        set.names = Some(all.clone());
    }
    if sets.outliers.is_some() {
        return Err(DataError::Labels(
            "data.outliers adds classes 10–19 after numbered labels; it cannot be used with named classes"
                .into(),
        ));
    }
    Ok(Some(all))
}

/// `data.normal_labels` as label numbers (`None` when unset): names looked
/// up among the classes' `names`. The test split must have labels to mark.
pub(crate) fn resolve_normal(
    cfg: &DataConfig,
    names: Option<&[String]>,
    sets: &Sets,
) -> Result<Option<Vec<u8>>, DataError> {
    if sets.outliers.is_some() {
        let high = [&sets.train, &sets.test]
            .into_iter()
            .filter_map(|s| s.labels.as_ref().map(|l| (s, l)))
            .find_map(|(s, l)| {
                l.iter()
                    .find(|&&l| l >= OUTLIER_LABEL_OFFSET)
                    .map(|l| (s, *l))
            });
        if let Some((set, label)) = high {
            return Err(DataError::Labels(format!(
                "{} has the label {label}, but data.outliers numbers its classes from {OUTLIER_LABEL_OFFSET}; use labels 0–9, or remove data.outliers",
                set.origin.display()
            )));
        }
    }
    let Some(wanted) = &cfg.normal_labels else {
        return Ok(None);
    };
    if sets.test.labels.is_none() {
        return Err(DataError::Labels(format!(
            "data.normal_labels marks the test images whose labels are not listed as anomalies, but {} has no labels; give the test split labels (class folders, a labels file, a `label` column)",
            sets.test.origin.display()
        )));
    }
    let listed = |names: &[String]| names.join(", ");
    wanted
        .iter()
        .map(|label| match (label, names) {
            (LabelRef::Number(n), None) => Ok(*n),
            (LabelRef::Name(name), Some(names)) => names
                .iter()
                .position(|n| n == name)
                .map(|i| i as u8)
                .ok_or_else(|| {
                    DataError::Labels(format!(
                        "data.normal_labels names the class {name:?}, which no split has; the classes are: {}",
                        listed(names)
                    ))
                }),
            (LabelRef::Number(n), Some(names)) => Err(DataError::Labels(format!(
                "data.normal_labels lists the number {n}, but the classes have names ({}); list names, e.g. [{:?}]",
                listed(names),
                names[0]
            ))),
            (LabelRef::Name(name), None) => Err(DataError::Labels(format!(
                "data.normal_labels names the class {name:?}, but the labels are numbers; list numbers, e.g. [0]"
            ))),
        })
        .collect::<Result<Vec<u8>, _>>()
        .map(Some)
}
