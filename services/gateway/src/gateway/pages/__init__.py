"""Staff pages. Each module holds the thin handlers of one area; add yours to `page_routes`.

Every handler here sits behind `page_guard` (gateway.guards) and must declare who may open it with
`opt=allow(...)` (gateway.roles) or `opt=PUBLIC`; an undeclared page admits nobody.
"""

from gateway.pages import (
    auth,
    care_quality,
    care_team,
    clients,
    content,
    content_board,
    content_instagram,
    content_public,
    content_stats,
    dashboard,
    deals,
    inbox,
    inbox_admin,
    inbox_files,
    leads,
    media,
    monitoring,
    payroll,
    sales,
    settings,
    sop_calendar,
    sop_groups,
    sop_pushes,
    sop_rules,
    sop_tasks,
    staff,
    status,
    webform,
)

page_routes = [*auth.routes, *dashboard.routes, *deals.routes, *clients.routes, *leads.routes, *payroll.routes,
               *staff.routes, *status.routes, *settings.routes, *content.routes, *content_board.routes,
               *content_public.routes, *content_stats.routes, *content_instagram.routes, *media.routes,
               *care_quality.routes, *care_team.routes, *monitoring.routes, *sales.routes, *webform.routes, *inbox_admin.routes,
               *inbox.routes, *inbox_files.routes, *sop_groups.routes, *sop_rules.routes, *sop_calendar.routes,
               *sop_pushes.routes, *sop_tasks.routes]
