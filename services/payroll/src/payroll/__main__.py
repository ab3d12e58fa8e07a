from shared.service import serve

serve("payroll", "payroll.app:create_app")
