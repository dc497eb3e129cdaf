"""`smicast api`: one collection loop, one serializer, three delivery channels."""
