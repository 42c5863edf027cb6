//! Organisation vocabulary: department kinds and levels.

use serde::{Deserialize, Serialize};

/// What a department is for in the programme: receiving clients (CS), receiving
/// channels and placements (TR), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeptKind {
    /// 客户成功事业部: receives enterprise-client leads.
    Cs,
    /// 招商引才事业部: receives channels and placements.
    Tr,
    Other,
}

impl DeptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeptKind::Cs => "cs",
            DeptKind::Tr => "tr",
            DeptKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<DeptKind> {
        match text {
            "cs" => Some(DeptKind::Cs),
            "tr" => Some(DeptKind::Tr),
            "other" => Some(DeptKind::Other),
            _ => None,
        }
    }

    /// The department's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            DeptKind::Cs => "客户成功事业部",
            DeptKind::Tr => "招商引才事业部",
            DeptKind::Other => "其他部门",
        }
    }
}

/// A person's level, which sets the PK stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Staff,
    Supervisor,
    Manager,
    Director,
    Vp,
    Gm,
}

impl Level {
    pub const ALL: [Level; 6] =
        [Level::Staff, Level::Supervisor, Level::Manager, Level::Director, Level::Vp, Level::Gm];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Staff => "staff",
            Level::Supervisor => "supervisor",
            Level::Manager => "manager",
            Level::Director => "director",
            Level::Vp => "vp",
            Level::Gm => "gm",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Level::Staff => "员工",
            Level::Supervisor => "主管",
            Level::Manager => "经理",
            Level::Director => "总监",
            Level::Vp => "副总",
            Level::Gm => "总经理",
        }
    }
}
