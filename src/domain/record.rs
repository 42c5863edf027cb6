//! Record states, modes and the rule for client stages.

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordState {
    /// Waiting for the receiving department.
    Reported,
    /// A placement: onboarded, waiting for its day-3 check.
    Onboarded,
    /// An agency or person channel: agreement confirmed, waiting for its base indicator.
    Agreed,
    /// Counts.
    Confirmed,
    Rejected,
    /// A placement whose person left before 3 days: never counts.
    Left,
    Voided,
    /// Taken back by its reporter while pending: never counts, claims nothing.
    Withdrawn,
}

impl RecordState {
    pub const ALL: [RecordState; 8] = [
        RecordState::Reported,
        RecordState::Onboarded,
        RecordState::Agreed,
        RecordState::Confirmed,
        RecordState::Rejected,
        RecordState::Left,
        RecordState::Voided,
        RecordState::Withdrawn,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RecordState::Reported => "reported",
            RecordState::Onboarded => "onboarded",
            RecordState::Agreed => "agreed",
            RecordState::Confirmed => "confirmed",
            RecordState::Rejected => "rejected",
            RecordState::Left => "left",
            RecordState::Voided => "voided",
            RecordState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(code: &str) -> Option<RecordState> {
        RecordState::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordState::Reported => "待确认",
            RecordState::Onboarded => "已入职，待满3天",
            RecordState::Agreed => "协议已确认，待基础指标",
            RecordState::Confirmed => "已确认",
            RecordState::Rejected => "已驳回",
            RecordState::Left => "未满3天离职",
            RecordState::Voided => "已作废",
            RecordState::Withdrawn => "已撤回",
        }
    }

    /// Still waiting for someone to decide.
    pub fn is_open(self) -> bool {
        matches!(self, RecordState::Reported | RecordState::Onboarded | RecordState::Agreed)
    }

    /// Nobody has decided anything yet: its reporter may still withdraw or edit it.
    pub fn is_pending(self) -> bool {
        matches!(self, RecordState::Reported | RecordState::Onboarded)
    }
}

/// Who closed it: the reporter, or the receiving department after a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 直接促成.
    Direct,
    /// 转接: the reporter found the key person and handed over.
    Transfer,
}

impl Mode {
    pub fn code(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Transfer => "transfer",
        }
    }

    pub fn parse(code: &str) -> Option<Mode> {
        match code {
            "direct" => Some(Mode::Direct),
            "transfer" => Some(Mode::Transfer),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Direct => "直接",
            Mode::Transfer => "转接",
        }
    }
}

/// How a client's stages C → B → A add up; fixed on each record when it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeadStages {
    /// Every stage carries its own points.
    #[default]
    Cumulative,
    /// Only a client's highest confirmed stage counts.
    Highest,
}

impl LeadStages {
    pub fn code(self) -> &'static str {
        match self {
            LeadStages::Cumulative => "cumulative",
            LeadStages::Highest => "highest",
        }
    }

    pub fn parse(code: &str) -> Option<LeadStages> {
        match code {
            "cumulative" => Some(LeadStages::Cumulative),
            "highest" => Some(LeadStages::Highest),
            _ => None,
        }
    }
}
