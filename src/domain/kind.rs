//! The kinds of achievement the programme counts (有效业绩), their labels and who
//! confirms them.

use crate::domain::org::DeptKind;
use serde::Deserialize;

/// A record's kind; its code is what configuration and storage use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    LeadC,
    LeadB,
    LeadA,
    ChannelSchool,
    ChannelAgency,
    ChannelPerson,
    Placement,
    Referral,
}

impl RecordKind {
    pub const ALL: [RecordKind; 8] = [
        RecordKind::LeadC,
        RecordKind::LeadB,
        RecordKind::LeadA,
        RecordKind::ChannelSchool,
        RecordKind::ChannelAgency,
        RecordKind::ChannelPerson,
        RecordKind::Placement,
        RecordKind::Referral,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RecordKind::LeadC => "lead_c",
            RecordKind::LeadB => "lead_b",
            RecordKind::LeadA => "lead_a",
            RecordKind::ChannelSchool => "channel_school",
            RecordKind::ChannelAgency => "channel_agency",
            RecordKind::ChannelPerson => "channel_person",
            RecordKind::Placement => "placement",
            RecordKind::Referral => "referral",
        }
    }

    pub fn parse(code: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            RecordKind::LeadC => "C类客户",
            RecordKind::LeadB => "B类客户",
            RecordKind::LeadA => "A类客户",
            RecordKind::ChannelSchool => "新增院校渠道",
            RecordKind::ChannelAgency => "新增机构渠道",
            RecordKind::ChannelPerson => "新增个人渠道",
            RecordKind::Placement => "新增安置上岗",
            RecordKind::Referral => "转介绍",
        }
    }

    /// Whether it is reported with a 方式 (直接 / 转接): C-class clients and channels.
    pub fn takes_mode(self) -> bool {
        matches!(
            self,
            RecordKind::LeadC | RecordKind::ChannelSchool | RecordKind::ChannelAgency | RecordKind::ChannelPerson
        )
    }

    /// How many placements must stay 3 days on the job before a new channel of this
    /// kind is valid (its base indicator, 基础指标).
    /// What a record of this kind claims under first claim wins: the stage for a
    /// client, `channel`, `referral`; a placement claims its person and day instead.
    pub fn claim_slot(self) -> Option<&'static str> {
        match self {
            RecordKind::Placement => None,
            RecordKind::Referral => Some("referral"),
            k if k.is_lead() => Some(k.code()),
            _ => Some("channel"),
        }
    }

    /// A client stage (C类, B类, A类).
    pub fn is_lead(self) -> bool {
        matches!(self, RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA)
    }

    pub fn base_indicator(self) -> Option<i64> {
        match self {
            RecordKind::ChannelAgency => Some(3),
            RecordKind::ChannelPerson => Some(1),
            _ => None,
        }
    }

    /// The department that confirms records of this kind.
    pub fn receiving_dept(self) -> DeptKind {
        match self {
            RecordKind::LeadC | RecordKind::LeadB | RecordKind::LeadA | RecordKind::Referral => DeptKind::Cs,
            _ => DeptKind::Tr,
        }
    }
}
